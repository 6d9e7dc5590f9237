/* Run-time release of the library (zstd's ZSTD_versionNumber model). */
#include "internal.h"

#define RISK_STR_(x) #x
#define RISK_STR(x) RISK_STR_(x)

uint32_t risk_version_number(void)
{
    return RISK_VERSION_NUMBER;
}

const char *risk_version_string(void)
{
    return RISK_STR(RISK_VERSION_MAJOR) "." RISK_STR(RISK_VERSION_MINOR) "." RISK_STR(
        RISK_VERSION_PATCH);
}
