# Turn a text file into a C source defining `const char NAME[]` with its bytes.
# Usage: cmake -DINPUT=file -DOUTPUT=file.c -DNAME=symbol -P embed-text.cmake
file(READ "${INPUT}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n\t" bytes "${bytes}")
file(WRITE "${OUTPUT}.tmp" "/* Generated from ${INPUT}; do not edit. */\nconst char ${NAME}[] = {\n\t${bytes}0x00\n};\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
