# contrib/local.mk: build rules for this area (included from the top Makefile.am).
# The test cluster script, the demo and the plugstack.conf example ship in the tarball.
EXTRA_DIST += contrib/testcluster contrib/demo contrib/plugstack.conf.example
# Their documentation (docs/local.mk belongs to the docs area).
EXTRA_DIST += docs/testcluster.md docs/arch-testcluster-spank.md
# Debian packaging (cp -r contrib/debian debian && dpkg-buildpackage -us -uc -b).
EXTRA_DIST += contrib/debian/control contrib/debian/rules contrib/debian/changelog \
	contrib/debian/copyright contrib/debian/source/format contrib/debian/dragon-slurm.install \
	contrib/debian/libdragon-dev.install contrib/debian/dragon-slurm.docs
