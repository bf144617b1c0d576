# Compiles each runtime/ source and header on its own as strict C99 with every
# warning an error, with only runtime/ on the include path: proof that the
# runtime needs nothing from the library to build for a device.
# Usage: cmake -DCC=<compiler> -DRUNTIME=<runtime dir> -P check_runtime_standalone.cmake
file(GLOB files "${RUNTIME}/*.c" "${RUNTIME}/*.h" "${RUNTIME}/kernels/*.c")
if(NOT files)
  message(FATAL_ERROR "no runtime sources under ${RUNTIME}")
endif()
set(failed 0)
foreach(f ${files})
  # -x c: a header is checked as a translation unit of its own.
  execute_process(
    COMMAND ${CC} -std=c99 -Wall -Wextra -Wpedantic -Werror -fsyntax-only
            -I ${RUNTIME} -x c ${f}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message("FAILED: ${f}\n${out}")
    math(EXPR failed "${failed} + 1")
  endif()
endforeach()
list(LENGTH files n)
if(failed GREATER 0)
  message(FATAL_ERROR "${failed} of ${n} runtime files do not build standalone as C99")
endif()
message("${n} runtime files build standalone as C99")
