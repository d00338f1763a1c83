"""The integrator API's routes: version 1 under /api/v1/, its schema and docs beside it.

The merchant is `merchant_slug`, not the portal's `slug`: these are no portal pages (the
portal's access tests take every route with a `slug` for one), and `str`, not `slug`, so
that an address with any merchant in it gets the API's JSON answer, never the portal's 404.
"""

from django.urls import path, re_path

from api import views

app_name = "api"

urlpatterns = [
    path("v1/merchants/", views.MerchantListView.as_view(), name="merchants"),
    path(
        "v1/merchants/<str:merchant_slug>/credentials/",
        views.CredentialListView.as_view(),
        name="credentials",
    ),
    path(
        "v1/merchants/<str:merchant_slug>/credentials/<str:provider>/<str:mode>/secret/",
        views.CredentialSecretView.as_view(),
        name="secret",
    ),
    path("schema/", views.SchemaView.as_view(), name="schema"),
    path("docs/", views.DocsView.as_view(url_name="api:schema"), name="docs"),
    re_path(r"", views.NoSuchAddressView.as_view(), name="no_such_address"),
]
