/* SPDX-License-Identifier: MIT */
/* fut_version, fut_version_string: the version of the library that is loaded, from the
 * configure-generated futures_version.h it was built with. */
#include "futures.h"

unsigned fut_version(void)
{
    return FUT_VERSION_HEX;
}

const char *fut_version_string(void)
{
    return FUT_VERSION_STRING;
}
