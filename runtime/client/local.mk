# runtime/client/local.mk: the client library (dragon_init, processes, groups, names, queues, sync objects, remote channels).
runtime_libdragon_impl_la_SOURCES += \
	runtime/client/client.c runtime/client/client.h runtime/client/sync.c \
	runtime/client/remote.c runtime/client/fchannel.c runtime/ta/gateway.h
dragoninclude_HEADERS += include/dragon/init.h include/dragon/process.h include/dragon/group.h \
	include/dragon/name.h include/dragon/queue.h include/dragon/sync.h \
	include/dragon/fchannel.h
