"""The help center's URLs: ``site_patterns`` below a site prefix, mounted at
``/help/<workspace slug>/`` here (the root URLconf includes this module at ``help/``) and at the
root of a custom domain by ``domain_urls``."""

from django.urls import include, path

from loket.web.helpcenter import views

site_patterns = [
    path("", views.root, name="root"),
    path("brand.css", views.brand_css, name="brand_css"),
    path("images/<str:key>", views.image, name="image"),
    path("<str:locale>/", views.home, name="home"),
    path("<str:locale>/search/", views.search, name="search"),
    path("<str:locale>/suggest.json", views.suggest, name="suggest"),
    path("<str:locale>/c/<slug:slug>/", views.category, name="category"),
    path("<str:locale>/a/<slug:slug>/", views.article, name="article"),
    path("<str:locale>/a/<slug:slug>/vote/", views.vote, name="vote"),
]

urlpatterns = [
    path("<slug:workspace>/", include((site_patterns, "helpcenter"))),
]
