"""Numbers partners report back, and how they compare with ours."""

from __future__ import annotations

from django.db import models

from partners.models import Partner


class Metric(models.TextChoices):
    IMPRESSIONS = "impressions", "Impressions"


class PartnerReport(models.Model):
    """A count a partner measured for one campaign and day in its reporting time zone."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="reports")
    campaign_id = models.CharField(max_length=64)
    date = models.DateField()
    metric = models.CharField(max_length=32, choices=Metric.choices)
    value = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-date", "partner", "campaign_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "campaign_id", "date", "metric"], name="report_unique_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.partner.slug} {self.campaign_id} {self.date} {self.metric}={self.value}"


class Discrepancy(models.Model):
    """Partner-reported versus internal counts for one partner, campaign, day and metric.

    ``difference`` is partner minus delivered: what the partner counted against
    what we actually sent it. Total and eligible counts show where a gap comes
    from (consent filtering versus delivery versus partner counting).
    """

    class Status(models.TextChoices):
        WITHIN_TOLERANCE = "within_tolerance", "Within tolerance"
        EXCEEDS_TOLERANCE = "exceeds_tolerance", "Exceeds tolerance"
        MISSING_PARTNER_REPORT = "missing_partner_report", "Partner has not reported"
        NO_INTERNAL_DATA = "no_internal_data", "Partner reported, we delivered nothing"

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="discrepancies")
    campaign_id = models.CharField(max_length=64)
    date = models.DateField()
    metric = models.CharField(max_length=32, choices=Metric.choices)
    partner_value = models.PositiveBigIntegerField(null=True, blank=True)
    internal_total = models.PositiveBigIntegerField()
    internal_eligible = models.PositiveBigIntegerField()
    internal_delivered = models.PositiveBigIntegerField()
    difference = models.BigIntegerField(null=True, blank=True)
    difference_pct = models.DecimalField(max_digits=9, decimal_places=2, null=True, blank=True)
    tolerance_pct = models.DecimalField(max_digits=5, decimal_places=2)
    status = models.CharField(max_length=24, choices=Status.choices)
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["-date", "partner", "campaign_id"]
        verbose_name_plural = "discrepancies"
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "campaign_id", "date", "metric"], name="discrepancy_unique_key"
            ),
        ]
        indexes = [models.Index(fields=["status", "date"], name="discrepancy_status_date")]

    def __str__(self) -> str:
        return f"{self.partner.slug} {self.campaign_id} {self.date}: {self.status}"
