"""Background jobs of the email channel."""

from __future__ import annotations

from loket.jobs.policy import job


@job(retries=6, backoff_base=10.0)
def confirm_sns_subscription(channel_id: int, url: str) -> None:
    """Visit an Amazon SNS SubscribeURL so the topic starts delivering the channel's mail (the
    URL came from a signature-checked message and matched esp.subscribe_url's pattern)."""
    from loket import http

    with http.client() as client:
        response = client.get(url)
    if response.status_code >= 500 or response.status_code == 429:
        raise RuntimeError(f"SNS answered HTTP {response.status_code}")
    response.raise_for_status()
