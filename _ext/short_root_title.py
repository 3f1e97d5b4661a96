"""The sidebar names the book's first page by the short ``title:`` that _toc.yml gives its root,
while the page keeps its full heading. sphinx-book-theme names that entry after the page's
heading (``root_title``), and sphinx-external-toc applies a toc ``title:`` only to the entries of
a toctree, never to the root: this sets ``root_title`` from the toc."""


def short_root_title(app, pagename, templatename, context, doctree):
    site_map = getattr(app.env, "external_site_map", None)
    title = site_map.root.title if site_map is not None else None
    if title:
        context["root_title"] = title


def setup(app):
    # after sphinx-book-theme's own handler (priority 500), which sets root_title
    app.connect("html-page-context", short_root_title, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
