"""The integrator API's routes (filled in by the API views)."""

app_name = "api"
urlpatterns = []
