/*
 * core/version.c - the version the library was built as.
 */
#include "beamline.h"

/* Compiled into the library, so a program can compare it with the
 * BL_VERSION_STRING of the headers it was compiled against. */
const char *bl_version(void)
{
    return BL_VERSION_STRING;
}
