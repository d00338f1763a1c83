from django.urls import path

from credentials import views

app_name = "credentials"

urlpatterns = [
    path("m/<slug:slug>/", views.MerchantView.as_view(), name="merchant"),
    path("m/<slug:slug>/keys/new/", views.CredentialSubmitView.as_view(), name="submit"),
    path("m/<slug:slug>/keys/<int:pk>/", views.CredentialDetailView.as_view(), name="detail"),
    path(
        "m/<slug:slug>/keys/<int:pk>/status.json",
        views.CredentialStatusView.as_view(),
        name="status",
    ),
    path(
        "m/<slug:slug>/keys/<int:pk>/revoke/",
        views.CredentialRevokeView.as_view(),
        name="revoke",
    ),
]
