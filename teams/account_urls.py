"""The account pages (no merchant in the address): two-factor sign-in."""

from django.urls import path

from teams.views import account

app_name = "account"

urlpatterns = [
    path("", account.AccountView.as_view(), name="account"),
    path("two-factor/", account.TwoFactorSetupView.as_view(), name="two_factor"),
    path("two-factor/verify/", account.TwoFactorVerifyView.as_view(), name="two_factor_verify"),
    path("two-factor/remove/", account.TwoFactorRemoveView.as_view(), name="two_factor_remove"),
    path("team-two-factor/", account.TeamTwoFactorView.as_view(), name="team_two_factor"),
]
