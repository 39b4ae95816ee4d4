from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "gateway.delivery"
    label = "delivery"
    verbose_name = "Delivery"

    def ready(self) -> None:
        from gateway.delivery.streaming import exposures_arrived
        from gateway.ingest.signals import exposures_committed

        def on_exposures_committed(sender: object, *, count: int, **_: object) -> None:
            exposures_arrived(count)

        # weak=False: the receiver is a local function that would be collected.
        exposures_committed.connect(
            on_exposures_committed, weak=False, dispatch_uid="delivery.streaming"
        )
