from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from config.health import healthz

admin.site.site_header = "Keyhouse helpdesk"
admin.site.site_title = "Keyhouse helpdesk"
admin.site.index_title = "Submissions and merchants"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("credentials.urls")),
    path("", include("teams.urls")),
    path("", include("merchants.urls")),
]
