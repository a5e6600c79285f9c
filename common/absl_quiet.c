/*  =========================================================================
    absl_quiet - switch off abseil's mutex deadlock detection

    The switch is C++: look it up by the mangled names Debian's and
    upstream's abseil give it.  kIgnore is 0.
    =========================================================================
*/
#include "absl_quiet.h"

#include <dlfcn.h>
#include <string.h>

void
absl_quiet (void)
{
    const char *names[] = {
        "_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_"
        "15OnDeadlockCycleE",
        "_ZN4absl12lts_2022062329SetMutexDeadlockDetectionModeENS0_"
        "15OnDeadlockCycleE",
        "_ZN4absl29SetMutexDeadlockDetectionModeENS_15OnDeadlockCycleE",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void (*set_mode) (int) = NULL;
        void *symbol = dlsym (RTLD_DEFAULT, names[i]);
        memcpy (&set_mode, &symbol, sizeof set_mode);
        if (set_mode) {
            set_mode (0);
            return;
        }
    }
}
