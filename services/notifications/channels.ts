/**
 * Delivery channels beyond in-app: e-mail through SMTP (nodemailer, to the server in
 * SMTP_URL) and SMS through an adapter, simulated here with a configurable failure rate.
 * A send either resolves or throws; the service retries with backoff.
 */
import nodemailer from "nodemailer";
import SMTPTransport from "nodemailer/lib/smtp-transport/index.js";
import type { Config } from "../../config/index.ts";

export interface Message {
	to: string;
	title: string;
	body: string;
}

export interface Channel {
	readonly name: "email" | "sms";
	send(m: Message): Promise<void>;
	close(): void;
}

/**
 * How long an e-mail send may take at each step. nodemailer's own defaults are two minutes
 * to connect, 30 s for the greeting and ten minutes of socket silence; a claimed delivery
 * (notifications.service.ts) waits on its send, so a server that accepts and then hangs
 * must fail the send (to be retried with backoff) within seconds.
 */
export const SMTP_TIMEOUTS_MS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 20_000 } as const;

export function emailChannel(config: Config, timeoutsMs: { connectionTimeout: number; greetingTimeout: number; socketTimeout: number } = SMTP_TIMEOUTS_MS): Channel | null {
	const url = config.notifications.smtpUrl;
	if (!url) return null;
	// The SMTP transport itself, because createTransport given a URL in its options keeps
	// only what the URL says and drops the limits; this one merges both.
	const transport = nodemailer.createTransport(new SMTPTransport({ url, ...timeoutsMs }), { from: config.notifications.mailFrom });
	return {
		name: "email",
		async send(m) {
			await transport.sendMail({ to: m.to, subject: m.title, text: m.body });
		},
		close() {
			transport.close();
		},
	};
}

/** The SMS adapter a real provider would implement; this one records and may fail on purpose. */
export function simulatedSmsChannel(config: Config, random: () => number = Math.random): Channel & { sent: Message[] } {
	const sent: Message[] = [];
	return {
		name: "sms",
		sent,
		async send(m) {
			if (random() * 100 < config.notifications.smsFailurePercent) throw new Error("sms gateway refused the message (simulated)");
			sent.push(m);
			if (sent.length > 1_000) sent.shift();
		},
		close() {},
	};
}
