"""The account pages (no merchant in the address): two-factor sign-in, time zone."""

from django.urls import path

from teams.views import account

app_name = "account"

urlpatterns = [
    path("", account.AccountView.as_view(), name="account"),
    path("two-factor/", account.TwoFactorSetupView.as_view(), name="two_factor"),
    path("two-factor/verify/", account.TwoFactorVerifyView.as_view(), name="two_factor_verify"),
    path("two-factor/remove/", account.TwoFactorRemoveView.as_view(), name="two_factor_remove"),
    path("time-zone/", account.TimeZoneView.as_view(), name="time_zone"),
    path("time-zone/detected/", account.TimeZoneDetectedView.as_view(), name="time_zone_detected"),
    path("team-two-factor/", account.TeamTwoFactorView.as_view(), name="team_two_factor"),
]
