/**
 * KYC documents (pure): what a file is by its first bytes (never by what the client says),
 * and whether a staff decision may be made.
 */
import type { Refusal } from "../../lib/errors.ts";
import { refusal } from "../../lib/errors.ts";

export const DOCUMENT_KINDS = ["passport", "id_card", "driving_licence", "proof_of_address"] as const;
export const DOCUMENT_TYPES = ["application/pdf", "image/png", "image/jpeg"] as const;
export type DocumentType = (typeof DOCUMENT_TYPES)[number];
/** Documents a user may have waiting for review at once. */
export const PENDING_DOCUMENTS_MAX = 5;

/** The type the content is, by its signature; null for anything else. */
export function sniffDocumentType(b: Uint8Array): DocumentType | null {
	if (b.length >= 5 && b[0] === 0x25 && b[1] === 0x50 && b[2] === 0x44 && b[3] === 0x46 && b[4] === 0x2d) return "application/pdf";
	if (b.length >= 8 && [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a].every((x, i) => b[i] === x)) return "image/png";
	if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "image/jpeg";
	return null;
}

/** Four eyes and one decision per document: staff decide other people's documents, once. */
export function decisionProblem(doc: { userId: string; status: string }, staffId: string): Refusal | null {
	if (doc.userId === staffId) return refusal("FORBIDDEN", "nobody decides their own documents");
	if (doc.status !== "pending") return refusal("ILLEGAL_TRANSITION", `the document is ${doc.status} already`);
	return null;
}
