"""The permissions the merchant app declares and checks itself.

They are part of the catalogue in `teams/permissions.py`, which builds the roles; they are
named here because this app sits below teams and checks them in its own services and pages.
"""

# Merchant permissions: asked per merchant, answered by the member's role there.
VIEW_MERCHANT = "merchants.access_merchant"
EDIT_MERCHANT_PROFILE = "merchants.edit_merchant_profile"

# Helpdesk (global) permissions, from the staff user's groups.
HELPDESK_VIEW_MERCHANTS = "merchants.view_merchant"
HELPDESK_ADD_MERCHANTS = "merchants.add_merchant"
HELPDESK_EDIT_MERCHANTS = "merchants.change_merchant"
