/* Unit tests: OpenSSH time intervals for -t. */
#include "base/convtime.h"
#include "base/err.h"
#include "check.h"

int main(void)
{
    uint32_t s = 0;

    CHECK(convtime("90", &s) == 0 && s == 90);
    CHECK(convtime("10m", &s) == 0 && s == 600);
    CHECK(convtime("1h30m", &s) == 0 && s == 5400);
    CHECK(convtime("1w2d3h4m5s", &s) == 0 && s == 7 * 86400 + 2 * 86400 + 3 * 3600 + 245);
    CHECK(convtime("2H", &s) == 0 && s == 7200);
    CHECK(convtime("", &s) != 0);
    CHECK(convtime("m", &s) != 0);
    CHECK(convtime("10x", &s) != 0);
    CHECK(convtime("-5", &s) != 0);
    CHECK(convtime("99999999999", &s) == KW_ERR_TOO_LARGE);
    CHECK(convtime("4000w", &s) == KW_ERR_TOO_LARGE);
    return check_finish("test_convtime");
}
