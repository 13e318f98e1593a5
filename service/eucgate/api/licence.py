"""eucgate.v1.LicenceService: licence quota balances and customs shipment debits."""

from __future__ import annotations

import re
from decimal import Decimal

import grpc
import structlog
from eucgate_client.v1 import certificate_pb2
from eucgate_client.v1 import licence_service_pb2 as pb2
from eucgate_client.v1 import licence_service_pb2_grpc as pb2_grpc

from eucgate import licences
from eucgate.api.access import Access
from eucgate.api.convert import timestamp
from eucgate.api.status import rpc_handler
from eucgate.core.quota import QuotaUnitError
from eucgate.errors import FailedPrecondition, InvalidSubmission, NotFound
from eucgate.gate import Gate
from eucgate.ids import is_decision_id, new_shipment_id
from eucgate.store.base import Ledger, Recorder, Shipment

log = structlog.get_logger("eucgate.api")

GATEWAY_REFERENCE = re.compile(r"^[A-Za-z0-9._:/-]{1,128}$")
# Printable, no white space: a control character gives the same answer on both stores.
LICENCE_NUMBER = re.compile(r"^[!-~\u00a1-\U0010ffff]{1,128}$")
CONTROL_CODE = re.compile(r"^[0-9][A-E][0-9]{3}[a-z0-9.]*$")
QUANTITY = re.compile(r"^[0-9]{1,24}(?:\.[0-9]{1,12})?$")
UNIT = re.compile(r"^[A-Za-z]{1,16}$")


def _text(value: Decimal) -> str:
    return format(value, "f")


class LicenceServicer(pb2_grpc.LicenceServiceServicer):
    def __init__(self, gate: Gate, ledger: Ledger, recorder: Recorder, access: Access) -> None:
        self._gate = gate
        self._ledger = ledger
        self._recorder = recorder
        self._access = access

    @rpc_handler
    def GetLicenceBalance(
        self, request: pb2.GetLicenceBalanceRequest, context: grpc.ServicerContext
    ) -> pb2.GetLicenceBalanceResponse:
        if not LICENCE_NUMBER.fullmatch(request.licence_number):
            raise InvalidSubmission(
                "licence_number must be 1 to 128 characters without white space",
                reason="LICENCE_NUMBER_INVALID",
                field="licence_number",
            )
        bundle = self._gate.bundle
        scope = self._access.require(context).scope()
        if scope is not None and not licences.held_by(bundle, request.licence_number, scope):
            # The same answer as for a licence nobody holds: nothing of others leaks.
            raise NotFound(
                f"no quota kept for licence {request.licence_number}",
                reason="LICENCE_NOT_FOUND",
            )
        try:
            rows = licences.balance_rows(self._ledger, bundle, request.licence_number)
        except QuotaUnitError as exc:
            raise FailedPrecondition(str(exc), reason="QUOTA_UNIT_MISMATCH") from exc
        if request.control_code:
            rows = [r for r in rows if r[0] == request.control_code]
        if not rows:
            raise NotFound(
                f"no quota kept for licence {request.licence_number}"
                + (f" under {request.control_code}" if request.control_code else ""),
                reason="LICENCE_NOT_FOUND",
            )
        return pb2.GetLicenceBalanceResponse(
            licence_number=request.licence_number,
            bundle_digest=bundle.digest,
            balances=[
                pb2.QuotaBalance(
                    control_code=code,
                    unit=unit,
                    quota=_text(quota),
                    approved=_text(approved),
                    shipped=_text(shipped),
                    remaining=_text(quota - approved),
                )
                for code, unit, quota, approved, shipped in rows
            ],
        )

    @rpc_handler
    def RecordShipment(
        self, request: pb2.RecordShipmentRequest, context: grpc.ServicerContext
    ) -> pb2.RecordShipmentResponse:
        _check_shipment(request)
        now = self._gate.now()
        result = self._recorder.record_shipment(
            Shipment(
                shipment_id=new_shipment_id(now),
                decision_id=request.decision_id,
                caller=self._access.require(context).name,
                gateway_reference=request.gateway_reference,
                control_code=request.control_code,
                quantity=Decimal(request.quantity.value),
                unit=request.quantity.unit,
                recorded_at=now,
            )
        )
        s = result.shipment
        log.info(
            "shipment",
            shipment_id=s.shipment_id,
            decision_id=s.decision_id,
            gateway_reference=s.gateway_reference,
            licence_number=s.licence_number,
            control_code=s.control_code,
            quantity=f"{_text(s.quantity)} {s.unit}",
            replayed=result.replayed,
        )
        return pb2.RecordShipmentResponse(
            shipment=pb2.Shipment(
                shipment_id=s.shipment_id,
                gateway_reference=s.gateway_reference,
                decision_id=s.decision_id,
                licence_number=s.licence_number,
                control_code=s.control_code,
                quantity=certificate_pb2.Quantity(value=_text(s.quantity), unit=s.unit),
                caller=s.caller,
                recorded_at=timestamp(s.recorded_at),
            ),
            replayed=result.replayed,
            leaf_index=result.leaf_index or 0,
        )


def _check_shipment(request: pb2.RecordShipmentRequest) -> None:
    """Raises InvalidSubmission naming the first field that is malformed."""
    if not GATEWAY_REFERENCE.fullmatch(request.gateway_reference):
        raise InvalidSubmission(
            "gateway_reference must be 1 to 128 characters from [A-Za-z0-9._:/-]",
            reason="SHIPMENT_REFERENCE_INVALID",
            field="gateway_reference",
        )
    if not is_decision_id(request.decision_id):
        raise InvalidSubmission(
            "decision_id must look like dec_ followed by 26 base32 characters",
            reason="DECISION_ID_INVALID",
            field="decision_id",
        )
    if not CONTROL_CODE.fullmatch(request.control_code):
        raise InvalidSubmission(
            "control_code must be a control list code such as 1C904",
            reason="SHIPMENT_CONTROL_CODE_INVALID",
            field="control_code",
        )
    value, unit = request.quantity.value, request.quantity.unit
    if not QUANTITY.fullmatch(value) or Decimal(value) <= 0 or not UNIT.fullmatch(unit):
        raise InvalidSubmission(
            'quantity must be a positive decimal string (e.g. "250.5") with a unit',
            reason="SHIPMENT_QUANTITY_INVALID",
            field="quantity",
        )
