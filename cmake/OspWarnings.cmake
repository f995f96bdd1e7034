# Warning and hardening flags live on one interface target linked PRIVATE by every target.
option(OSP_WERROR "Treat warnings as errors" OFF)
add_library(osp_build_flags INTERFACE)
target_compile_definitions(osp_build_flags INTERFACE _POSIX_C_SOURCE=200809L)
target_compile_options(osp_build_flags INTERFACE
    -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Wold-style-definition -Wwrite-strings -Wformat=2 -Wcast-qual -Wpointer-arith -Wvla
    -Wundef -Wimplicit-fallthrough -Wnull-dereference
    -Werror=implicit-function-declaration -Werror=incompatible-pointer-types
    -fstack-protector-strong
    # snprintf into fixed buffers (error messages, paths checked elsewhere) truncates on
    # purpose; GCC's -O2 heuristics flag every such call, so the warning is noise here.
    -Wno-format-truncation)
# Link only the shared libraries a program uses (a test or tool that never calls libcurl or
# libmicrohttpd does not load their dependency chains). The worker goes further: ADR 0006.
target_link_options(osp_build_flags INTERFACE -Wl,--as-needed)
if(OSP_WERROR)
    target_compile_options(osp_build_flags INTERFACE -Werror)
endif()
