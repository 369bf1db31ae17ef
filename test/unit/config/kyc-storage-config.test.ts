/**
 * KYC_STORAGE and the KYC_S3_* settings (config/index.ts): the directory by default, the
 * bucket with KYC_STORAGE=s3 and everything it needs, a stray or half setting refused by
 * name, the secret key checked like every secret and never echoed.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { ConfigError, loadConfig } from "../../../config/index.ts";

const SECRET = randomBytes(30).toString("base64url");
const S3 = { KYC_STORAGE: "s3", KYC_S3_ENDPOINT: "https://s3.eu-west-1.amazonaws.com", KYC_S3_BUCKET: "paymesh-kyc", KYC_S3_ACCESS_KEY_ID: "AKIAPAYMESH0000TEST1", KYC_S3_SECRET_ACCESS_KEY: SECRET };

function refuses(env: Record<string, string>, message: RegExp): void {
	assert.throws(() => loadConfig(env), (e: unknown) => {
		assert.ok(e instanceof ConfigError, String(e));
		assert.match(e.message, message);
		for (const v of Object.values(env)) if (v.length >= 16) assert.equal(e.message.includes(v), false, `echoed ${v}`);
		return true;
	});
}

describe("KYC document storage settings", () => {
	it("keeps documents in the directory by default", () => {
		const c = loadConfig({ DATA_DIR: "/var/paymesh" });
		assert.deepEqual(c.kyc, { storageDir: "/var/paymesh/documents", documentBytesMax: 5 * 1024 * 1024, s3: null });
		assert.equal(loadConfig({ KYC_STORAGE: "directory", KYC_STORAGE_DIR: "/srv/docs" }).kyc.storageDir, "/srv/docs");
	});

	it("reads the bucket with KYC_STORAGE=s3, with defaults for the rest", () => {
		assert.deepEqual(loadConfig(S3).kyc.s3, {
			endpoint: "https://s3.eu-west-1.amazonaws.com", bucket: "paymesh-kyc", region: "us-east-1", accessKeyId: "AKIAPAYMESH0000TEST1", secretAccessKey: SECRET,
			pathStyle: false, serverSideEncryption: null, kmsKeyId: null, timeoutMs: 5_000,
		});
		const c = loadConfig({ ...S3, KYC_S3_ENDPOINT: "http://127.0.0.1:9000/", KYC_S3_REGION: "eu-west-1", KYC_S3_PATH_STYLE: "true", KYC_S3_SSE: "aws:kms", KYC_S3_SSE_KMS_KEY_ID: "alias/paymesh-kyc", KYC_S3_TIMEOUT_MS: "2000" }).kyc.s3;
		assert.deepEqual([c?.endpoint, c?.region, c?.pathStyle, c?.serverSideEncryption, c?.kmsKeyId, c?.timeoutMs], ["http://127.0.0.1:9000", "eu-west-1", true, "aws:kms", "alias/paymesh-kyc", 2_000]);
	});

	it("refuses a missing, stray or malformed setting by name, never echoing the keys", () => {
		for (const name of ["KYC_S3_ENDPOINT", "KYC_S3_BUCKET", "KYC_S3_ACCESS_KEY_ID", "KYC_S3_SECRET_ACCESS_KEY"]) {
			const env: Record<string, string> = { ...S3 };
			delete env[name];
			refuses(env, new RegExp(`^${name} is required when KYC_STORAGE=s3`));
		}
		refuses({ KYC_STORAGE: "bucket" }, /^KYC_STORAGE="bucket" is invalid: expected one of directory, s3/);
		refuses({ KYC_S3_BUCKET: "paymesh-kyc" }, /^KYC_S3_BUCKET is set but KYC_STORAGE is not s3/);
		refuses({ KYC_STORAGE: "directory", KYC_S3_SECRET_ACCESS_KEY: SECRET }, /^KYC_S3_SECRET_ACCESS_KEY is set but KYC_STORAGE is not s3/);
		refuses({ ...S3, KYC_STORAGE_DIR: "/srv/docs" }, /^KYC_STORAGE_DIR is set but KYC_STORAGE=s3/);
		refuses({ ...S3, KYC_S3_ENDPOINT: "http://minio.internal:9000" }, /^KYC_S3_ENDPOINT is http:\/\/ on a host other than loopback/);
		refuses({ ...S3, KYC_S3_ENDPOINT: "https://s3.example.net/kyc" }, /^KYC_S3_ENDPOINT is invalid: expected the scheme, host and port only/);
		refuses({ ...S3, KYC_S3_ENDPOINT: "https://user:pw@s3.example.net" }, /^KYC_S3_ENDPOINT is invalid/);
		refuses({ ...S3, KYC_S3_ENDPOINT: "ftp://s3.example.net" }, /^KYC_S3_ENDPOINT has protocol ftp:/);
		refuses({ ...S3, KYC_S3_BUCKET: "Paymesh_KYC" }, /^KYC_S3_BUCKET="Paymesh_KYC" is invalid/);
		refuses({ ...S3, KYC_S3_ACCESS_KEY_ID: SECRET.slice(0, 10) + "/" + SECRET.slice(10) }, /^KYC_S3_ACCESS_KEY_ID is invalid/);
		refuses({ ...S3, KYC_S3_REGION: "EU West" }, /^KYC_S3_REGION="EU West" is invalid/);
		refuses({ ...S3, KYC_S3_SSE: "des" }, /^KYC_S3_SSE="des" is invalid: expected one of none, AES256, aws:kms/);
		refuses({ ...S3, KYC_S3_SSE: "AES256", KYC_S3_SSE_KMS_KEY_ID: "alias/paymesh-kyc" }, /^KYC_S3_SSE_KMS_KEY_ID is set but KYC_S3_SSE is not aws:kms/);
		refuses({ ...S3, KYC_S3_TIMEOUT_MS: "10" }, /^KYC_S3_TIMEOUT_MS="10" is invalid: expected an integer from 100 to 120000/);
	});

	it("checks the secret key like every secret: placeholders, weak and shared values refused without showing them", () => {
		refuses({ ...S3, KYC_S3_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" }, /^KYC_S3_SECRET_ACCESS_KEY looks like a placeholder \(contains "example"\)/);
		refuses({ ...S3, KYC_S3_SECRET_ACCESS_KEY: "short-Key-1" }, /^KYC_S3_SECRET_ACCESS_KEY is too short: expected at least 16 characters/);
		refuses({ ...S3, KYC_S3_SECRET_ACCESS_KEY: "ab".repeat(12) }, /^KYC_S3_SECRET_ACCESS_KEY has too little variety/);
		refuses({ ...S3, JWT_SECRET: SECRET }, /^KYC_S3_SECRET_ACCESS_KEY has the same value as JWT_SECRET/);
	});
});
