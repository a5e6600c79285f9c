/*  =========================================================================
    absl_quiet - switch off abseil's mutex deadlock detection

    Debian builds abseil with its debug checks on, so every absl::Mutex
    lock and unlock inside gRPC also maintains a lock graph for deadlock
    detection: about 12 % of the edge's instructions per request
    (callgrind), which release builds of abseil compile out.  Pure libc
    (dlsym), so any gRPC program here can call it.
    =========================================================================
*/
#ifndef TETHER_ABSL_QUIET_H
#define TETHER_ABSL_QUIET_H

//  Calls absl::SetMutexDeadlockDetectionMode (OnDeadlockCycle::kIgnore)
//  when the loaded abseil has it (looked up by its mangled name, as it is
//  C++); does nothing otherwise.  Call once, before grpc_init.
void absl_quiet (void);

#endif
