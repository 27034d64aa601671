from django.urls import path

from loket.web.csat import views

app_name = "csat"

urlpatterns = [
    path("<str:token>/", views.rate, name="rate"),
]
