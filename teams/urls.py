from django.urls import path

from teams import views
from teams.views import invitations as invitation_views

app_name = "teams"

urlpatterns = [
    path("m/<slug:slug>/team/", views.TeamView.as_view(), name="team"),
    path("m/<slug:slug>/team/invite/", views.InvitationCreateView.as_view(), name="invite"),
    path(
        "m/<slug:slug>/team/invitations/<int:pk>/resend/",
        views.InvitationResendView.as_view(),
        name="invitation_resend",
    ),
    path(
        "m/<slug:slug>/team/invitations/<int:pk>/revoke/",
        views.InvitationRevokeView.as_view(),
        name="invitation_revoke",
    ),
    path("m/<slug:slug>/team/members/<int:pk>/", views.MemberEditView.as_view(), name="member"),
    path(
        "m/<slug:slug>/team/members/<int:pk>/remove/",
        views.MemberRemoveView.as_view(),
        name="member_remove",
    ),
    path("m/<slug:slug>/team/leave/", views.LeaveView.as_view(), name="leave"),
    path("m/<slug:slug>/roles/", views.RoleListView.as_view(), name="roles"),
    path("m/<slug:slug>/roles/new/", views.RoleCreateView.as_view(), name="role_create"),
    path("m/<slug:slug>/roles/<int:pk>/edit/", views.RoleEditView.as_view(), name="role_edit"),
    path(
        "m/<slug:slug>/roles/<int:pk>/delete/", views.RoleDeleteView.as_view(), name="role_delete"
    ),
    path("m/<slug:slug>/audit/", views.AuditTrailView.as_view(), name="audit"),
    # The invitation page holds no token; the link's address only exchanges it (in that order:
    # "accept" is not a token).
    path(
        "invitations/accept/",
        invitation_views.InvitationAcceptView.as_view(),
        name="invitation_accept",
    ),
    path(
        "invitations/<str:token>/",
        invitation_views.InvitationLinkView.as_view(),
        name="invitation",
    ),
]
