/* A program outside the project: it sees only the installed <librisk.h>
 * and links -lrisk through pkg-config (tests/consumer/check-install.sh).
 * It proves the install works: header found, library found and loaded,
 * header and library agree on the version. */
#include <librisk.h>
#include <stdio.h>

int main(void)
{
    const char *v = risk_version_string();
    if (v == NULL || risk_version_number() != RISK_VERSION_NUMBER) {
        fprintf(stderr, "consumer: header %d and library %u disagree\n",
                RISK_VERSION_NUMBER, (unsigned)risk_version_number());
        return 1;
    }
    printf("%s\n", v);
    return 0;
}
