/* dragon/dragon.h: umbrella header of libdragon; include this one. */
#ifndef DRAGON_DRAGON_H
#define DRAGON_DRAGON_H

#include <dragon/error.h>

#endif
