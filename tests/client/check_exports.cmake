#   Fails when libtether exports a symbol outside the tether_ prefix (the
#   library compiles in shared code, such as common/tlog.c, whose names
#   must stay hidden).  Run with -DNM=... -DLIB=...
execute_process (COMMAND ${NM} -D --defined-only ${LIB}
                 OUTPUT_VARIABLE defined
                 RESULT_VARIABLE rc)
if (NOT rc EQUAL 0)
    message (FATAL_ERROR "nm -D ${LIB} failed (${rc})")
endif ()
string (REGEX MATCHALL "[^\n]* [A-Za-z] tether_[^\n]*" ours "${defined}")
#   What sanitizer builds add (__odr_asan.NAME per global) is not ours.
string (REGEX MATCHALL "[^\n]* [A-Za-z] __(odr_asan|asan|ubsan)[^\n]*"
        instrumentation "${defined}")
string (REGEX MATCHALL "[^\n]* [A-Za-z] [^\n]*" all "${defined}")
list (REMOVE_ITEM all ${ours} ${instrumentation})
if (all)
    message (FATAL_ERROR "libtether exports symbols outside tether_*: ${all}")
endif ()
list (LENGTH ours count)
message (STATUS "libtether exports ${count} symbols, all tether_*")
