// Reads the mails gatehouse's file driver writes (MAIL_DIR/*.eml), as a
// person would open them, to follow the links they carry.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** The decoded text/plain part of a MIME message. */
export function textPart(raw: string): string {
  const eml = raw.replace(/\r\n/g, "\n");
  const boundary = /boundary="?([^";\n]+)"?/i.exec(eml)?.[1];
  const parts = boundary ? eml.split(`--${boundary}`) : [eml];
  for (const part of parts) {
    const split = part.indexOf("\n\n");
    if (split < 0) continue;
    const head = part.slice(0, split);
    if (!/content-type:\s*text\/plain/i.test(head)) continue;
    const body = part.slice(split + 2);
    const encoding = /content-transfer-encoding:\s*([\w-]+)/i.exec(head)?.[1]?.toLowerCase();
    if (encoding === "base64") return Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8");
    if (encoding === "quoted-printable") {
      const bytes = body
        .replace(/=\n/g, "")
        .replace(/=([0-9A-F]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
      return Buffer.from(bytes, "latin1").toString("utf8");
    }
    return body;
  }
  return "";
}

/**
 * Waits for a mail to `to` whose subject contains `subject` and returns the
 * one-time token of its link (`?token=...`).
 */
export async function tokenFromMail(dir: string, to: string, subject: string, within = 15_000): Promise<string> {
  const deadline = Date.now() + within;
  for (;;) {
    for (const name of readdirSync(dir).filter((f) => f.endsWith(".eml"))) {
      const raw = readFileSync(join(dir, name), "utf8");
      if (!raw.toLowerCase().includes(`<${to.toLowerCase()}>`) || !raw.includes(subject)) continue;
      const token = /\?token=([A-Za-z0-9_-]{43})/.exec(textPart(raw))?.[1];
      if (token) return token;
    }
    if (Date.now() > deadline) throw new Error(`no mail "${subject}" to ${to} in ${dir}`);
    await sleep(50);
  }
}
