# contrib/local.mk: build rules for this area (included from the top Makefile.am).
# The test cluster script, the demo and the plugstack.conf example ship in the tarball.
EXTRA_DIST += contrib/testcluster contrib/demo contrib/plugstack.conf.example
# Their documentation (docs/local.mk belongs to the docs area).
EXTRA_DIST += docs/testcluster.md docs/arch-testcluster-spank.md
