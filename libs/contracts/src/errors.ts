/**
 * Error classes that cross layers: domain code throws them, transport adapters map them to status codes
 * (gRPC) or outcomes (NATS). They live with the contracts because their kind is part of the API.
 */

export class AisleError extends Error {
  override readonly name: string = 'AisleError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A request or event is malformed. `field` is the proto field path, e.g. `filters.min_price`. */
export class InvalidArgumentError extends AisleError {
  override readonly name = 'InvalidArgumentError';
  constructor(
    readonly field: string,
    readonly rule: string,
  ) {
    super(`${field}: ${rule}`);
  }
}

export class NotFoundError extends AisleError {
  override readonly name: string = 'NotFoundError';
}

/** A dependency (store, NATS, another service) cannot be reached; retrying later may succeed. */
export class UnavailableError extends AisleError {
  override readonly name = 'UnavailableError';
}

/** Load shedding: the request waited longer than its budget. */
export class ResourceExhaustedError extends AisleError {
  override readonly name: string = 'ResourceExhaustedError';
}

export class FailedPreconditionError extends AisleError {
  override readonly name = 'FailedPreconditionError';
}

export class DeadlineExceededError extends AisleError {
  override readonly name: string = 'DeadlineExceededError';
}

/** The caller is known but may not call this method, or not for this tenant. */
export class PermissionDeniedError extends AisleError {
  override readonly name = 'PermissionDeniedError';
}

/** The call carries no credentials this service recognizes. */
export class UnauthenticatedError extends AisleError {
  override readonly name = 'UnauthenticatedError';
}
