from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from config.health import healthz
from teams.sign_in_forms import PortalSignInForm

admin.site.site_header = "Keyhouse helpdesk"
admin.site.site_title = "Keyhouse helpdesk"
admin.site.index_title = "Submissions and merchants"

# A refused merchant page keeps the merchant's navigation (merchants.views.permission_denied).
handler403 = "merchants.views.permission_denied"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("keyhouse/favicon.ico"))),
    path("admin/", admin.site.urls),
    # The integrator API (bearer tokens of service accounts), its schema and docs.
    path("api/", include("api.urls")),
    path(
        "accounts/login/",
        # The code field (`otp_token`) is asked of accounts with an authenticator app.
        auth_views.LoginView.as_view(
            redirect_authenticated_user=True, authentication_form=PortalSignInForm
        ),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("config.auth_urls")),
    path("account/", include("teams.account_urls")),
    path("", include("credentials.urls")),
    path("", include("teams.urls")),
    path("", include("merchants.urls")),
]
