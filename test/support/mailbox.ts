/**
 * A local SMTP server (smtp-server) that keeps what it receives, for tests that read the
 * mail a node sends: verification codes, reset tokens, notices.
 */
import { SMTPServer } from "smtp-server";
import { until } from "./wait.ts";

export interface ReceivedMail {
	to: string[];
	subject: string;
	/** The text body, quoted-printable decoded. */
	text: string;
}

function decodeQuotedPrintable(s: string): string {
	const bytes = Buffer.from(s.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16))), "latin1");
	return bytes.toString("utf8");
}

function parse(raw: string, to: string[]): ReceivedMail {
	const split = raw.indexOf("\r\n\r\n");
	const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, " ");
	const body = raw.slice(split + 4);
	const header = (name: string) => new RegExp(`^${name}: *(.*)$`, "im").exec(head)?.[1]?.trim() ?? "";
	const encoding = header("Content-Transfer-Encoding").toLowerCase();
	const text = encoding === "quoted-printable" ? decodeQuotedPrintable(body) : encoding === "base64" ? Buffer.from(body, "base64").toString("utf8") : body;
	return { to, subject: header("Subject"), text: text.replace(/\r\n/g, "\n") };
}

export interface Mailbox {
	url: string;
	mails: ReceivedMail[];
	/** The first mail to `address` whose subject matches, not taken before; waits for it. */
	take(address: string, subject: RegExp, timeoutMs?: number): Promise<ReceivedMail>;
	/** Mails to `address` (taken or not). */
	to(address: string): ReceivedMail[];
	close(): Promise<void>;
}

export async function startMailbox(): Promise<Mailbox> {
	const mails: ReceivedMail[] = [];
	const taken = new Set<ReceivedMail>();
	const server = new SMTPServer({
		authOptional: true, disabledCommands: ["STARTTLS", "AUTH"], logger: false,
		onData(stream, session, callback) {
			let data = "";
			stream.on("data", (c: Buffer) => (data += c.toString("latin1")));
			stream.on("end", () => {
				mails.push(parse(data, session.envelope.rcptTo.map(r => r.address.toLowerCase())));
				callback();
			});
		},
	});
	await new Promise<void>(r => server.listen(0, "127.0.0.1", () => r()));
	const addr = server.server.address();
	if (!addr || typeof addr !== "object") throw new Error("smtp server is not listening");
	const find = (address: string, subject: RegExp) => mails.find(m => !taken.has(m) && m.to.includes(address.toLowerCase()) && subject.test(m.subject));
	return {
		url: `smtp://127.0.0.1:${addr.port}`,
		mails,
		async take(address, subject, timeoutMs = 15_000) {
			await until(`a mail to ${address} about ${subject}`, () => find(address, subject) !== undefined, timeoutMs);
			const m = find(address, subject);
			if (!m) throw new Error("unreachable");
			taken.add(m);
			return m;
		},
		to: address => mails.filter(m => m.to.includes(address.toLowerCase())),
		close: () => new Promise<void>(r => server.close(() => r())),
	};
}
