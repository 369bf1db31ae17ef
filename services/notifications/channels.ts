/**
 * Delivery channels beyond in-app: e-mail through SMTP (nodemailer, to the server in
 * SMTP_URL) and SMS through an adapter, simulated here with a configurable failure rate.
 * A send either resolves or throws; the service retries with backoff.
 */
import nodemailer from "nodemailer";
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

export function emailChannel(config: Config): Channel | null {
	const url = config.notifications.smtpUrl;
	if (!url) return null;
	const transport = nodemailer.createTransport(url, { from: config.notifications.mailFrom });
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
