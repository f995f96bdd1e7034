# libev ships no pkg-config file on Debian; find the header and library directly.
find_path(LIBEV_INCLUDE_DIR ev.h)
find_library(LIBEV_LIBRARY NAMES ev)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Libev DEFAULT_MSG LIBEV_LIBRARY LIBEV_INCLUDE_DIR)
if(Libev_FOUND AND NOT TARGET Libev::Libev)
    add_library(Libev::Libev UNKNOWN IMPORTED)
    set_target_properties(Libev::Libev PROPERTIES
        IMPORTED_LOCATION ${LIBEV_LIBRARY}
        INTERFACE_SYSTEM_INCLUDE_DIRECTORIES ${LIBEV_INCLUDE_DIR})
endif()
