# contrib/build.sh: sourced by contrib/demo and contrib/test-all: install dependencies, configure and build.
# Sets $build to the build directory. Expects $top (the source tree).

# The test cluster's nodes each get a private /tmp and /dev/shm, so a build tree there would be
# invisible to them: build out of tree under /var/tmp in that case.
case "$top" in
/tmp/* | /dev/shm/*)
	build="/var/tmp/dragon-slurm-build-$(printf '%s' "$top" | cksum | cut -d' ' -f1)"
	echo "build: the checkout is under /tmp; building in $build so the test cluster's nodes see it"
	;;
*) build="$top/build" ;;
esac
sh "$top/contrib/install-deps"
(cd "$top" && { ./autogen.sh >/dev/null 2>&1 || ./autogen.sh; })
mkdir -p "$build"
(
	cd "$build"
	[ -f Makefile ] || "$top/configure" --enable-werror --prefix="$build/prefix"
	make -j"$(nproc)"
)
