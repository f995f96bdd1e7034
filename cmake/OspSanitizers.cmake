# OSP_SANITIZE=address,undefined builds everything (tests included) with the sanitizers.
set(OSP_SANITIZE "" CACHE STRING "Comma-separated sanitizers, e.g. address,undefined")
if(OSP_SANITIZE)
    add_compile_options(-fsanitize=${OSP_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
    add_link_options(-fsanitize=${OSP_SANITIZE})
endif()
