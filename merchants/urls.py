from django.urls import path

from merchants import views

app_name = "merchants"

urlpatterns = [
    path("", views.DashboardView.as_view(), name="dashboard"),
    path("m/<slug:slug>/profile/", views.MerchantProfileEditView.as_view(), name="profile"),
]
