import json

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.core.validators import MaxValueValidator

from . import bounds, label_schema
from .models import AnnotationType, ConsensusMethod, User


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=False)
    organisation = forms.CharField(required=False, max_length=200)
    country = forms.RegexField(
        regex=r"^[A-Za-z]{2}$", required=False, help_text="Two-letter country code"
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


class JobForm(forms.Form):
    """The job's fields on the requester's new-job page (``quality.requester_views.NewJobForm``
    adds the review mode, which lives in quality). Its inputs carry the same bounds the job
    service enforces (``marketplace.bounds``); the service's field errors are shown on the fields
    they name."""

    title = forms.CharField(max_length=bounds.TITLE_MAX_LENGTH)
    instructions = forms.CharField(
        widget=forms.Textarea, required=False, max_length=bounds.INSTRUCTIONS_MAX_LENGTH
    )
    annotation_type = forms.ChoiceField(choices=AnnotationType.choices)
    label_classes = forms.CharField(
        help_text="Comma-separated class names, e.g. car, person",
        max_length=bounds.LABEL_CLASSES_MAX * (bounds.LABEL_CLASS_NAME_MAX_LENGTH + 2),
    )
    label_attributes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        # Bounded like the API's: every class, attribute and value at its largest, as JSON.
        max_length=20_000,
        help_text='Optional, JSON: attributes per class, e.g. {"car": [{"name": "occluded", '
        '"type": "bool"}, {"name": "colour", "type": "choice", "values": ["red", "blue"]}, '
        '{"name": "speed", "type": "number", "min": 0, "max": 200}]}',
    )
    relation_predicates = forms.CharField(
        required=False,
        max_length=label_schema.PREDICATES_MAX * (label_schema.PREDICATE_MAX_LENGTH + 2),
        help_text="Optional, comma-separated predicates of relations, e.g. rides, holds",
    )
    event_labels = forms.CharField(
        required=False,
        max_length=bounds.LABEL_CLASSES_MAX * (bounds.LABEL_CLASS_NAME_MAX_LENGTH + 2),
        help_text="Track jobs, optional: comma-separated labels of events on the tracks "
        "(actions over time), e.g. crossing, waving",
    )
    overlap_min = forms.IntegerField(min_value=1, max_value=10, initial=3)
    overlap_max = forms.IntegerField(min_value=1, max_value=10, initial=5)
    gold_rate = forms.FloatField(min_value=0.0, max_value=0.5, initial=0.1)
    expected_objects = forms.IntegerField(min_value=1, max_value=500, initial=3)
    consensus_method = forms.ChoiceField(
        choices=ConsensusMethod.choices,
        required=False,
        initial=ConsensusMethod.VOTE,
        help_text="Mask jobs: how workers' masks are merged",
    )
    track_masks = forms.BooleanField(
        required=False, help_text="Track jobs: a segmentation mask on each keyframe"
    )
    budget = forms.IntegerField(min_value=0, help_text="Minor units (cents)")
    currency = forms.ChoiceField(help_text="Fixed once the job is created")
    deadline = forms.DateTimeField(required=False, help_text="Optional; in the future")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Settings are read per form, never at import.
        self.fields["budget"].max_value = bounds.money_amount_max()
        self.fields["budget"].validators.append(MaxValueValidator(bounds.money_amount_max()))
        self.fields["budget"].widget.attrs["max"] = bounds.money_amount_max()
        currencies = bounds.supported_currencies()
        self.fields["currency"].choices = [(c, c.upper()) for c in currencies]
        self.fields["currency"].initial = currencies[0] if currencies else None

    def clean_consensus_method(self) -> str:
        return self.cleaned_data.get("consensus_method") or ConsensusMethod.VOTE

    def clean_label_classes(self) -> list[str]:
        return [c.strip() for c in self.cleaned_data["label_classes"].split(",") if c.strip()]

    def clean_label_attributes(self) -> dict:
        text = self.cleaned_data["label_attributes"].strip()
        if not text:
            return {}
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            raise forms.ValidationError("Must be JSON, like the example.") from None

    def clean_relation_predicates(self) -> list[str]:
        text = self.cleaned_data["relation_predicates"]
        return [p.strip() for p in text.split(",") if p.strip()]

    def clean_event_labels(self) -> list[str]:
        text = self.cleaned_data["event_labels"]
        return [e.strip() for e in text.split(",") if e.strip()]

    def add_service_errors(self, fields: dict[str, list[str]], message: str) -> None:
        """Show a service ``ValidationError`` on the fields it names (the rest on the form)."""
        for name, problems in (fields or {}).items():
            for problem in problems:
                self.add_error(name if name in self.fields else None, problem)
        if not fields:
            self.add_error(None, message)
