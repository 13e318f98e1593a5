# Generated from proto/ by clients/python/gen_proto.py. Do not edit.
import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PaymentMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAYMENT_METHOD_UNSPECIFIED: _ClassVar[PaymentMethod]
    PAYMENT_METHOD_BANK_TRANSFER: _ClassVar[PaymentMethod]
    PAYMENT_METHOD_LETTER_OF_CREDIT: _ClassVar[PaymentMethod]
    PAYMENT_METHOD_CASH: _ClassVar[PaymentMethod]
    PAYMENT_METHOD_OTHER: _ClassVar[PaymentMethod]

class IntermediaryRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTERMEDIARY_ROLE_UNSPECIFIED: _ClassVar[IntermediaryRole]
    INTERMEDIARY_ROLE_FREIGHT_FORWARDER: _ClassVar[IntermediaryRole]
    INTERMEDIARY_ROLE_TRADER: _ClassVar[IntermediaryRole]
    INTERMEDIARY_ROLE_CUSTOMS_BROKER: _ClassVar[IntermediaryRole]
    INTERMEDIARY_ROLE_OTHER: _ClassVar[IntermediaryRole]

class ItemForm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ITEM_FORM_UNSPECIFIED: _ClassVar[ItemForm]
    ITEM_FORM_METAL: _ClassVar[ItemForm]
    ITEM_FORM_ALLOY: _ClassVar[ItemForm]
    ITEM_FORM_OXIDE: _ClassVar[ItemForm]
    ITEM_FORM_COMPOUND: _ClassVar[ItemForm]
    ITEM_FORM_MAGNET: _ClassVar[ItemForm]
    ITEM_FORM_OTHER: _ClassVar[ItemForm]

class EndUseCategory(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    END_USE_CATEGORY_UNSPECIFIED: _ClassVar[EndUseCategory]
    END_USE_CATEGORY_EV_TRACTION_MOTORS: _ClassVar[EndUseCategory]
    END_USE_CATEGORY_WIND_TURBINE_GENERATORS: _ClassVar[EndUseCategory]
    END_USE_CATEGORY_CONSUMER_ELECTRONICS: _ClassVar[EndUseCategory]
    END_USE_CATEGORY_INDUSTRIAL_MOTORS: _ClassVar[EndUseCategory]
    END_USE_CATEGORY_AUTOMOTIVE_COMPONENTS: _ClassVar[EndUseCategory]
    END_USE_CATEGORY_MEDICAL_DEVICES: _ClassVar[EndUseCategory]
    END_USE_CATEGORY_CIVIL_RESEARCH: _ClassVar[EndUseCategory]
    END_USE_CATEGORY_TRADING: _ClassVar[EndUseCategory]
    END_USE_CATEGORY_OTHER_CIVIL: _ClassVar[EndUseCategory]
    END_USE_CATEGORY_MILITARY: _ClassVar[EndUseCategory]
    END_USE_CATEGORY_DEFENCE: _ClassVar[EndUseCategory]
    END_USE_CATEGORY_WEAPONS: _ClassVar[EndUseCategory]
    END_USE_CATEGORY_WMD: _ClassVar[EndUseCategory]
    END_USE_CATEGORY_NUCLEAR_EXPLOSIVE: _ClassVar[EndUseCategory]
    END_USE_CATEGORY_MISSILE: _ClassVar[EndUseCategory]
    END_USE_CATEGORY_UAV: _ClassVar[EndUseCategory]
PAYMENT_METHOD_UNSPECIFIED: PaymentMethod
PAYMENT_METHOD_BANK_TRANSFER: PaymentMethod
PAYMENT_METHOD_LETTER_OF_CREDIT: PaymentMethod
PAYMENT_METHOD_CASH: PaymentMethod
PAYMENT_METHOD_OTHER: PaymentMethod
INTERMEDIARY_ROLE_UNSPECIFIED: IntermediaryRole
INTERMEDIARY_ROLE_FREIGHT_FORWARDER: IntermediaryRole
INTERMEDIARY_ROLE_TRADER: IntermediaryRole
INTERMEDIARY_ROLE_CUSTOMS_BROKER: IntermediaryRole
INTERMEDIARY_ROLE_OTHER: IntermediaryRole
ITEM_FORM_UNSPECIFIED: ItemForm
ITEM_FORM_METAL: ItemForm
ITEM_FORM_ALLOY: ItemForm
ITEM_FORM_OXIDE: ItemForm
ITEM_FORM_COMPOUND: ItemForm
ITEM_FORM_MAGNET: ItemForm
ITEM_FORM_OTHER: ItemForm
END_USE_CATEGORY_UNSPECIFIED: EndUseCategory
END_USE_CATEGORY_EV_TRACTION_MOTORS: EndUseCategory
END_USE_CATEGORY_WIND_TURBINE_GENERATORS: EndUseCategory
END_USE_CATEGORY_CONSUMER_ELECTRONICS: EndUseCategory
END_USE_CATEGORY_INDUSTRIAL_MOTORS: EndUseCategory
END_USE_CATEGORY_AUTOMOTIVE_COMPONENTS: EndUseCategory
END_USE_CATEGORY_MEDICAL_DEVICES: EndUseCategory
END_USE_CATEGORY_CIVIL_RESEARCH: EndUseCategory
END_USE_CATEGORY_TRADING: EndUseCategory
END_USE_CATEGORY_OTHER_CIVIL: EndUseCategory
END_USE_CATEGORY_MILITARY: EndUseCategory
END_USE_CATEGORY_DEFENCE: EndUseCategory
END_USE_CATEGORY_WEAPONS: EndUseCategory
END_USE_CATEGORY_WMD: EndUseCategory
END_USE_CATEGORY_NUCLEAR_EXPLOSIVE: EndUseCategory
END_USE_CATEGORY_MISSILE: EndUseCategory
END_USE_CATEGORY_UAV: EndUseCategory

class EndUserCertificate(_message.Message):
    __slots__ = ("certificate_number", "issued_at", "validity", "exporter", "importer", "consignee", "intermediaries", "end_user", "items", "end_use", "final_destination_country", "undertakings", "signatory", "endorsement", "transaction")
    CERTIFICATE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    VALIDITY_FIELD_NUMBER: _ClassVar[int]
    EXPORTER_FIELD_NUMBER: _ClassVar[int]
    IMPORTER_FIELD_NUMBER: _ClassVar[int]
    CONSIGNEE_FIELD_NUMBER: _ClassVar[int]
    INTERMEDIARIES_FIELD_NUMBER: _ClassVar[int]
    END_USER_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    END_USE_FIELD_NUMBER: _ClassVar[int]
    FINAL_DESTINATION_COUNTRY_FIELD_NUMBER: _ClassVar[int]
    UNDERTAKINGS_FIELD_NUMBER: _ClassVar[int]
    SIGNATORY_FIELD_NUMBER: _ClassVar[int]
    ENDORSEMENT_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    certificate_number: str
    issued_at: _timestamp_pb2.Timestamp
    validity: Validity
    exporter: Party
    importer: Party
    consignee: Party
    intermediaries: _containers.RepeatedCompositeFieldContainer[Intermediary]
    end_user: Party
    items: _containers.RepeatedCompositeFieldContainer[Item]
    end_use: EndUse
    final_destination_country: str
    undertakings: Undertakings
    signatory: Signatory
    endorsement: Endorsement
    transaction: Transaction
    def __init__(self, certificate_number: _Optional[str] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., validity: _Optional[_Union[Validity, _Mapping]] = ..., exporter: _Optional[_Union[Party, _Mapping]] = ..., importer: _Optional[_Union[Party, _Mapping]] = ..., consignee: _Optional[_Union[Party, _Mapping]] = ..., intermediaries: _Optional[_Iterable[_Union[Intermediary, _Mapping]]] = ..., end_user: _Optional[_Union[Party, _Mapping]] = ..., items: _Optional[_Iterable[_Union[Item, _Mapping]]] = ..., end_use: _Optional[_Union[EndUse, _Mapping]] = ..., final_destination_country: _Optional[str] = ..., undertakings: _Optional[_Union[Undertakings, _Mapping]] = ..., signatory: _Optional[_Union[Signatory, _Mapping]] = ..., endorsement: _Optional[_Union[Endorsement, _Mapping]] = ..., transaction: _Optional[_Union[Transaction, _Mapping]] = ...) -> None: ...

class Transaction(_message.Message):
    __slots__ = ("payment_method", "transit_countries", "installation_declined", "training_declined")
    PAYMENT_METHOD_FIELD_NUMBER: _ClassVar[int]
    TRANSIT_COUNTRIES_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_DECLINED_FIELD_NUMBER: _ClassVar[int]
    TRAINING_DECLINED_FIELD_NUMBER: _ClassVar[int]
    payment_method: PaymentMethod
    transit_countries: _containers.RepeatedScalarFieldContainer[str]
    installation_declined: bool
    training_declined: bool
    def __init__(self, payment_method: _Optional[_Union[PaymentMethod, str]] = ..., transit_countries: _Optional[_Iterable[str]] = ..., installation_declined: _Optional[bool] = ..., training_declined: _Optional[bool] = ...) -> None: ...

class Validity(_message.Message):
    __slots__ = ("not_before", "not_after")
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    not_before: _timestamp_pb2.Timestamp
    not_after: _timestamp_pb2.Timestamp
    def __init__(self, not_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., not_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Party(_message.Message):
    __slots__ = ("legal_name", "address", "country_code", "registrations", "parent_company", "owners")
    LEGAL_NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_CODE_FIELD_NUMBER: _ClassVar[int]
    REGISTRATIONS_FIELD_NUMBER: _ClassVar[int]
    PARENT_COMPANY_FIELD_NUMBER: _ClassVar[int]
    OWNERS_FIELD_NUMBER: _ClassVar[int]
    legal_name: str
    address: Address
    country_code: str
    registrations: _containers.RepeatedCompositeFieldContainer[Registration]
    parent_company: str
    owners: _containers.RepeatedCompositeFieldContainer[Owner]
    def __init__(self, legal_name: _Optional[str] = ..., address: _Optional[_Union[Address, _Mapping]] = ..., country_code: _Optional[str] = ..., registrations: _Optional[_Iterable[_Union[Registration, _Mapping]]] = ..., parent_company: _Optional[str] = ..., owners: _Optional[_Iterable[_Union[Owner, _Mapping]]] = ...) -> None: ...

class Address(_message.Message):
    __slots__ = ("lines", "city", "region", "postal_code", "country_code")
    LINES_FIELD_NUMBER: _ClassVar[int]
    CITY_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    POSTAL_CODE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_CODE_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedScalarFieldContainer[str]
    city: str
    region: str
    postal_code: str
    country_code: str
    def __init__(self, lines: _Optional[_Iterable[str]] = ..., city: _Optional[str] = ..., region: _Optional[str] = ..., postal_code: _Optional[str] = ..., country_code: _Optional[str] = ...) -> None: ...

class Registration(_message.Message):
    __slots__ = ("scheme", "value")
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    scheme: str
    value: str
    def __init__(self, scheme: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class Owner(_message.Message):
    __slots__ = ("legal_name", "country_code", "share_percent")
    LEGAL_NAME_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_CODE_FIELD_NUMBER: _ClassVar[int]
    SHARE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    legal_name: str
    country_code: str
    share_percent: str
    def __init__(self, legal_name: _Optional[str] = ..., country_code: _Optional[str] = ..., share_percent: _Optional[str] = ...) -> None: ...

class Intermediary(_message.Message):
    __slots__ = ("party", "role")
    PARTY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    party: Party
    role: IntermediaryRole
    def __init__(self, party: _Optional[_Union[Party, _Mapping]] = ..., role: _Optional[_Union[IntermediaryRole, str]] = ...) -> None: ...

class Item(_message.Message):
    __slots__ = ("description", "hs_code", "elements", "form", "quantity", "value", "contract_reference")
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    HS_CODE_FIELD_NUMBER: _ClassVar[int]
    ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    FORM_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    description: str
    hs_code: str
    elements: _containers.RepeatedScalarFieldContainer[str]
    form: ItemForm
    quantity: Quantity
    value: Money
    contract_reference: str
    def __init__(self, description: _Optional[str] = ..., hs_code: _Optional[str] = ..., elements: _Optional[_Iterable[str]] = ..., form: _Optional[_Union[ItemForm, str]] = ..., quantity: _Optional[_Union[Quantity, _Mapping]] = ..., value: _Optional[_Union[Money, _Mapping]] = ..., contract_reference: _Optional[str] = ...) -> None: ...

class Quantity(_message.Message):
    __slots__ = ("value", "unit")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    value: str
    unit: str
    def __init__(self, value: _Optional[str] = ..., unit: _Optional[str] = ...) -> None: ...

class Money(_message.Message):
    __slots__ = ("amount", "currency_code")
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    amount: str
    currency_code: str
    def __init__(self, amount: _Optional[str] = ..., currency_code: _Optional[str] = ...) -> None: ...

class EndUse(_message.Message):
    __slots__ = ("category", "statement")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    STATEMENT_FIELD_NUMBER: _ClassVar[int]
    category: EndUseCategory
    statement: str
    def __init__(self, category: _Optional[_Union[EndUseCategory, str]] = ..., statement: _Optional[str] = ...) -> None: ...

class Undertakings(_message.Message):
    __slots__ = ("no_wmd_use", "no_military_end_use", "no_military_end_user", "no_reexport_without_consent", "no_reexport_to", "qualification")
    NO_WMD_USE_FIELD_NUMBER: _ClassVar[int]
    NO_MILITARY_END_USE_FIELD_NUMBER: _ClassVar[int]
    NO_MILITARY_END_USER_FIELD_NUMBER: _ClassVar[int]
    NO_REEXPORT_WITHOUT_CONSENT_FIELD_NUMBER: _ClassVar[int]
    NO_REEXPORT_TO_FIELD_NUMBER: _ClassVar[int]
    QUALIFICATION_FIELD_NUMBER: _ClassVar[int]
    no_wmd_use: bool
    no_military_end_use: bool
    no_military_end_user: bool
    no_reexport_without_consent: bool
    no_reexport_to: _containers.RepeatedScalarFieldContainer[str]
    qualification: str
    def __init__(self, no_wmd_use: _Optional[bool] = ..., no_military_end_use: _Optional[bool] = ..., no_military_end_user: _Optional[bool] = ..., no_reexport_without_consent: _Optional[bool] = ..., no_reexport_to: _Optional[_Iterable[str]] = ..., qualification: _Optional[str] = ...) -> None: ...

class Signatory(_message.Message):
    __slots__ = ("name", "position", "signed_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    SIGNED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    position: str
    signed_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., position: _Optional[str] = ..., signed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Endorsement(_message.Message):
    __slots__ = ("authority", "country_code", "reference", "endorsed_at")
    AUTHORITY_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_CODE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ENDORSED_AT_FIELD_NUMBER: _ClassVar[int]
    authority: str
    country_code: str
    reference: str
    endorsed_at: _timestamp_pb2.Timestamp
    def __init__(self, authority: _Optional[str] = ..., country_code: _Optional[str] = ..., reference: _Optional[str] = ..., endorsed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
