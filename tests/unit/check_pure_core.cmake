#   Fails when the pure router core library refers to any socket, poller,
#   loop, clock or zsys symbol.  Run with -DNM=... -DLIB=...
execute_process (COMMAND ${NM} -u ${LIB}
                 OUTPUT_VARIABLE undefined
                 RESULT_VARIABLE rc)
if (NOT rc EQUAL 0)
    message (FATAL_ERROR "nm -u ${LIB} failed (${rc})")
endif ()
string (REGEX MATCHALL "[^\n]*(zsock_|zpoller_|zloop_|zclock_|zmq_poll|zsys_)[^\n]*"
        impure "${undefined}")
if (impure)
    message (FATAL_ERROR "router core is not pure: ${impure}")
endif ()
message (STATUS "router core refers to no socket, poll, clock or zsys symbol")
