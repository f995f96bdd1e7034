# Turns a text file into a C source defining `const char SYM[]` (used for Lua and SQL).
file(READ ${SRC} content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "(char)0x\\1," content "${content}")
file(WRITE ${OUT} "/* generated from ${SRC} */\nconst char ${SYM}[] = {${content} 0x00};\n")
