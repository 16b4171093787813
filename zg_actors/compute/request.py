"""Signed inference requests and responses.

The user signs (network, user, provider, nonce, max fee, input hash, max tokens): the
fee cap covers the prompt's input fee plus the output fee of `max_tokens`, so the user
authorises at most that before the completion length is known.  The provider charges
the real fee (prompt tokens x input price + completion tokens x output price, never
above the cap) and signs the response over the request hash, token counts, fee and
output hash, so a user can check what was billed and who answered.
"""

from __future__ import annotations

from dataclasses import dataclass

from zg_actors.compute.errors import FeeAboveCap, InvalidMaxTokens
from zg_actors.crypto.accounts import ADDRESS_BYTES, Account, recover_address
from zg_actors.crypto.encoding import Decoded, as_bytes, as_int, as_list, as_str, decode, encode
from zg_actors.crypto.keccak import keccak256

# Domain tags keep these hashes apart from tx hashes (whose payload starts with an int).
REQUEST_DOMAIN = b"zg-serving-request"
RESPONSE_DOMAIN = b"zg-serving-response"
HASH_BYTES = 32


def fee_for(prompt_tokens: int, completion_tokens: int, input_price: int,
            output_price: int) -> int:
    """Billing is by tokens of the model's own tokenizer, never by bytes."""
    return prompt_tokens * input_price + completion_tokens * output_price


def fee_cap(prompt_tokens: int, max_tokens: int, input_price: int, output_price: int) -> int:
    """What a user signs for: the input fee plus the output fee reserved for max_tokens."""
    return fee_for(prompt_tokens, max_tokens, input_price, output_price)


def check_max_tokens(max_tokens: int) -> None:
    """The signed cap reserves max_tokens of output, so a request must bound its completion:
    a model told 0 generates until its context window fills, far past that cap."""
    if max_tokens < 1:
        raise InvalidMaxTokens(f"max_tokens must be at least 1, got {max_tokens}: the fee cap "
                               f"you sign reserves max_tokens completion tokens",
                               max_tokens=max_tokens)


@dataclass(frozen=True)
class Request:
    network_id: int
    user: bytes
    provider: bytes
    nonce: int
    max_fee: int
    input_hash: bytes
    max_tokens: int

    @property
    def hash(self) -> bytes:
        return keccak256(encode([REQUEST_DOMAIN, self.network_id, self.user, self.provider,
                                 self.nonce, self.max_fee, self.input_hash, self.max_tokens]))

    def to_list(self) -> list:
        return [self.network_id, self.user, self.provider, self.nonce, self.max_fee,
                self.input_hash, self.max_tokens]

    @classmethod
    def from_list(cls, fields: Decoded) -> Request:
        f = as_list(fields, 7)
        return cls(as_int(f[0]), as_bytes(f[1], ADDRESS_BYTES), as_bytes(f[2], ADDRESS_BYTES),
                   as_int(f[3]), as_int(f[4]), as_bytes(f[5], HASH_BYTES), as_int(f[6]))


@dataclass(frozen=True)
class SignedRequest:
    request: Request
    signature: bytes
    text: str

    def signer(self) -> bytes:
        """The address that signed; InvalidSignature if it recovers none."""
        return recover_address(self.request.hash, self.signature)


def sign_request(account: Account, network_id: int, provider: bytes, nonce: int, text: str,
                 max_fee: int, max_tokens: int) -> SignedRequest:
    check_max_tokens(max_tokens)
    request = Request(network_id, account.address, provider, nonce, max_fee,
                      keccak256(text.encode()), max_tokens)
    return SignedRequest(request, account.sign_hash(request.hash), text)


@dataclass(frozen=True)
class Receipt:
    """A served request: what the provider keeps until it is settled, and what it answers."""

    request: Request
    user_signature: bytes
    prompt_tokens: int
    completion_tokens: int
    fee: int
    output: str
    provider_signature: bytes = b""

    @property
    def response_hash(self) -> bytes:
        return keccak256(encode([RESPONSE_DOMAIN, self.request.hash, self.prompt_tokens,
                                 self.completion_tokens, self.fee,
                                 keccak256(self.output.encode())]))

    def signed_by(self, provider: Account) -> Receipt:
        return Receipt(self.request, self.user_signature, self.prompt_tokens,
                       self.completion_tokens, self.fee, self.output,
                       provider.sign_hash(self.response_hash))

    def response_signer(self) -> bytes:
        return recover_address(self.response_hash, self.provider_signature)

    def encode(self) -> bytes:
        return encode([self.request.to_list(), self.user_signature, self.prompt_tokens,
                       self.completion_tokens, self.fee, self.output, self.provider_signature])

    @classmethod
    def decode(cls, raw: bytes) -> Receipt:
        f = as_list(decode(raw), 7)
        return cls(Request.from_list(f[0]), as_bytes(f[1]), as_int(f[2]), as_int(f[3]),
                   as_int(f[4]), as_str(f[5]), as_bytes(f[6]))


def check_within_cap(receipt: Receipt) -> None:
    """The fee billed stays within the max fee the user signed: above it the user's
    signature authorises nothing, and settlement refuses the trace."""
    if receipt.fee > receipt.request.max_fee:
        raise FeeAboveCap(f"receipt for nonce {receipt.request.nonce} bills {receipt.fee} "
                          f"({receipt.completion_tokens} completion tokens), above the max fee "
                          f"{receipt.request.max_fee} the user signed for "
                          f"{receipt.request.max_tokens} tokens", fee=receipt.fee,
                          max_fee=receipt.request.max_fee, nonce=receipt.request.nonce)


def make_receipt(request: Request, user_signature: bytes, prompt_tokens: int,
                 completion_tokens: int, output: str, input_price: int,
                 output_price: int) -> Receipt:
    """The bill of a served request, by tokens; FeeAboveCap rather than a bill the user
    did not authorise."""
    receipt = Receipt(request, user_signature, prompt_tokens, completion_tokens,
                      fee_for(prompt_tokens, completion_tokens, input_price, output_price),
                      output)
    check_within_cap(receipt)
    return receipt
