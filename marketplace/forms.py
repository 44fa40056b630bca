from django import forms
from django.contrib.auth.forms import UserCreationForm

from .models import AnnotationType, Job, User


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=False)
    organisation = forms.CharField(required=False, max_length=200)
    country = forms.RegexField(
        regex=r"^[A-Za-z]{2}$", required=False, help_text="Two-letter country code"
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


class JobForm(forms.ModelForm):
    label_classes = forms.CharField(help_text="Comma-separated class names, e.g. car, person")
    annotation_type = forms.ChoiceField(choices=AnnotationType.choices)

    class Meta:
        model = Job
        fields = [
            "title",
            "instructions",
            "annotation_type",
            "label_classes",
            "overlap_min",
            "overlap_max",
            "gold_rate",
            "expected_objects",
            "budget",
            "currency",
            "deadline",
        ]

    def clean_label_classes(self) -> list[str]:
        names = [c.strip() for c in self.cleaned_data["label_classes"].split(",") if c.strip()]
        if not names:
            raise forms.ValidationError("Name at least one class.")
        if len(set(names)) != len(names):
            raise forms.ValidationError("Class names must be unique.")
        return names
