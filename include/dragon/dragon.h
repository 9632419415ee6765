/* dragon/dragon.h: umbrella header of libdragon; include this one. */
#ifndef DRAGON_DRAGON_H
#define DRAGON_DRAGON_H

#include <dragon/error.h>
#include <dragon/pool.h>
#include <dragon/channel.h>
#include <dragon/init.h>
#include <dragon/process.h>
#include <dragon/group.h>
#include <dragon/name.h>
#include <dragon/queue.h>
#include <dragon/sync.h>
#include <dragon/fchannel.h>
#include <dragon/ddict.h>

#endif
