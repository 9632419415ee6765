# docs/local.mk: the documentation's pictures (Graphviz sources, PNGs committed beside them) and the check that they name real files.
PICTURES = docs/pictures/layers docs/pictures/message-path
EXTRA_DIST += $(PICTURES:=.dot) $(PICTURES:=.png) docs/pictures/check-names.sh

# make pictures: render the PNGs again after editing a .dot (needs Debian's graphviz).
.PHONY: pictures
pictures:
	@command -v dot >/dev/null || { echo "make pictures: needs Graphviz's dot (Debian package graphviz)" >&2; exit 1; }
	for p in $(PICTURES); do dot -Tpng -Gdpi=110 $(srcdir)/$$p.dot -o $(srcdir)/$$p.png || exit 1; done

# Every source file a picture names exists, so a reader can go from the picture to the code.
TESTS += docs/pictures/check-names.sh
