# OSP_LEAN_WORKER: link opspool-worker against Debian's static archives (libpq.a with
# libpgcommon/libpgport from postgresql-server-dev, libssl.a/libcrypto.a, hiredis, libev,
# msgpack-c, jansson) instead of the shared libraries. Reason and numbers:
# docs/decisions/0006-lean-worker-link.md. In short: libpq.so.5's dependency chain (libldap →
# GnuTLS → p11-kit, gmp, nettle …; libgssapi_krb5 → krb5 …) costs ~5.6 MiB of RSS in every
# worker before it connects. libpq.a still calls LDAP and GSSAPI; worker/lean/pqdeps.c
# forwards those calls to the real libraries, opened on first use. libcurl is always opened on
# first use (common/curl_lazy.c), so is libm (common/libm_lazy.c), and the worker's HTTP
# endpoints do not use libmicrohttpd (common/httpmini.c): the lean worker's only shared
# library is libc.
#
# Default: on when every archive is found, with a message saying which is missing otherwise
# (the worker then links the shared libraries, and works the same with a larger footprint).
# deploy/local/deps.sh installs postgresql-server-dev-15, which provides the two pg archives.
find_program(OSP_PG_CONFIG pg_config)
set(_osp_pgpkglib "")
if(OSP_PG_CONFIG)
    execute_process(COMMAND ${OSP_PG_CONFIG} --pkglibdir OUTPUT_VARIABLE _osp_pgpkglib
                    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
endif()
set(_osp_lean_missing "")
set(OSP_LEAN_ARCHIVES "")
foreach(spec "pq;LIBPQ" "pgcommon_shlib;PG" "pgport_shlib;PG" "ssl;CRYPTO" "crypto;CRYPTO"
             "hiredis;HIREDIS" "ev;LIBEV" "msgpackc;MSGPACK" "jansson;JANSSON")
    list(GET spec 0 name)
    list(GET spec 1 pkg)
    set(hints "")
    if(pkg STREQUAL "PG")
        set(hints ${_osp_pgpkglib})
    elseif(DEFINED ${pkg}_LIBRARY_DIRS)
        set(hints ${${pkg}_LIBRARY_DIRS})
    endif()
    string(MAKE_C_IDENTIFIER "OSP_STATIC_${name}" var)
    find_library(${var} NAMES lib${name}.a HINTS ${hints} /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE})
    if(${var})
        list(APPEND OSP_LEAN_ARCHIVES ${${var}})
    else()
        list(APPEND _osp_lean_missing lib${name}.a)
    endif()
endforeach()
if(_osp_lean_missing)
    set(_osp_lean_default OFF)
else()
    set(_osp_lean_default ON)
endif()
option(OSP_LEAN_WORKER "Link opspool-worker against static archives (small footprint)"
       ${_osp_lean_default})
if(OSP_LEAN_WORKER AND _osp_lean_missing)
    message(FATAL_ERROR "OSP_LEAN_WORKER=ON but not found: ${_osp_lean_missing} "
                        "(deploy/local/deps.sh installs them)")
elseif(NOT OSP_LEAN_WORKER)
    message(STATUS "opspool-worker links the shared libraries (missing: ${_osp_lean_missing})")
else()
    message(STATUS "opspool-worker links static libpq, OpenSSL, hiredis, libev, msgpack, jansson")
    add_library(osp_lean_deps INTERFACE)
    target_sources(osp_lean_deps INTERFACE ${CMAKE_SOURCE_DIR}/worker/lean/pqdeps.c)
    # Order matters for static archives: libpq before what it calls, OpenSSL last but libc.
    target_link_libraries(osp_lean_deps INTERFACE ${OSP_LEAN_ARCHIVES} ${CMAKE_DL_LIBS})
    # The position-independent executable's ~20,000 relative relocations in the compact RELR
    # form (glibc >= 2.36, binutils >= 2.38): the loader reads 6 KiB instead of 470 KiB.
    include(CheckLinkerFlag)
    check_linker_flag(C "-Wl,-z,pack-relative-relocs" OSP_HAVE_RELR)
    if(OSP_HAVE_RELR)
        target_link_options(osp_lean_deps INTERFACE "-Wl,-z,pack-relative-relocs")
    endif()
    # No -lm on purpose: libm.so.6 costs ~300 KiB of RSS at load (its IFUNC resolvers run),
    # and only job children need it; call libm through common/libm_lazy.h. An undefined
    # reference to pow/exp/log here means a new direct call to libm.
endif()
