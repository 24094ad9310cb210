import { createHash } from 'node:crypto';

/**
 * Deterministic, sticky assignment: a unit's arm is a function of (salt, tenant, unit) only, so no
 * per-user state is kept, every replica agrees, and a unit is re-assigned only when the salt changes.
 */

const SEP = '\u001f';

/** The randomization unit: the user, or the session for anonymous visitors; '' when neither is known. */
export function unitOf(userId: string, sessionId: string): string {
  if (userId) return `u:${userId}`;
  if (sessionId) return `s:${sessionId}`;
  return '';
}

/** A uniform draw in [0, 1) from the SHA-256 of the parts (the first 48 bits). */
export function uniformHash(...parts: string[]): number {
  const digest = createHash('sha256').update(parts.join(SEP)).digest();
  return digest.readUIntBE(0, 6) / 2 ** 48;
}

export interface AssignmentPlan {
  tenant: string;
  salt: string;
  /** Share of units left out, 0..1. */
  holdout: number;
  arms: ReadonlyArray<{ name: string; share: number }>;
}

/**
 * The arm of a unit, or undefined for a unit in the holdout (or without any id). The holdout and the arm
 * come from independent hashes, so that changing the holdout does not move units between arms.
 */
export function assignArm(plan: AssignmentPlan, unit: string): string | undefined {
  if (!unit || plan.arms.length === 0) return undefined;
  if (plan.holdout > 0 && uniformHash(plan.salt, plan.tenant, unit, 'holdout') < plan.holdout) return undefined;
  const total = plan.arms.reduce((a, b) => a + b.share, 0);
  let u = uniformHash(plan.salt, plan.tenant, unit, 'arm') * total;
  for (const arm of plan.arms) {
    u -= arm.share;
    if (u < 0) return arm.name;
  }
  return plan.arms[plan.arms.length - 1]?.name;
}
