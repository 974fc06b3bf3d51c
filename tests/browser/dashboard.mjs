// Drives the dashboard in Debian's headless Chromium (playwright-core, system
// browser, no download). Usage: node dashboard.mjs URL USER PASSWORD API_TOKEN OUTDIR
// Exits non-zero on the first failed check.
import { chromium } from 'playwright-core';

const [url, user, pass, token, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node dashboard.mjs URL USER PASSWORD API_TOKEN OUTDIR');
  process.exit(2);
}
const base = url.replace(/\/$/, '');

function check(cond, msg) {
  if (!cond) {
    throw new Error(`FAIL: ${msg}`);
  }
  console.log(`ok: ${msg}`);
}

const digits = (s) => (s || '').replace(/[^0-9]/g, '');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // The flags the machine needs: no sandbox as root, and no background
  // connections to Google's hosts from a closed network.
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
let failed = false;
try {
  // What the API says the seed warning is: the first TCP/1025 surge window.
  const r = await fetch(`${base}/api/v1/alerts`, { headers: { Authorization: `Bearer ${token}` } });
  check(r.status === 200, 'the read API answers with the demo token');
  const alerts = await r.json();
  const seed = alerts
    .filter((a) => a.protocol === 'tcp' && a.port === 1025 && !a.update)
    .sort((a, b) => a.window_start.localeCompare(b.window_start))[0];
  check(seed !== undefined, 'the centre stored a TCP/1025 warning');
  const anon = await fetch(`${base}/api/v1/alerts`);
  check(anon.status === 401, 'the API refuses a request without a token');

  // An unauthenticated visitor sees nothing but the login page.
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  for (const path of ['/', '/alerts', `/alerts/${seed.id}`, '/ports/tcp/1025', '/sensors', `/sources/${seed.top_sources[0].ip}`]) {
    await page.goto(base + path);
    check(new URL(page.url()).pathname === '/login', `unauthenticated ${path} shows the login page`);
    const text = await page.innerText('body');
    check(
      !text.includes(seed.headline) && (await page.locator('svg').count()) === 0 && !text.includes('sensor-'),
      `unauthenticated ${path} shows no warning, chart or sensor`,
    );
  }
  await page.screenshot({ path: `${out}/login.png` });

  // A wrong password is refused.
  await page.goto(`${base}/login`);
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', 'not-the-password');
  await Promise.all([page.waitForLoadState(), page.click('button[type=submit]')]);
  check(new URL(page.url()).pathname === '/login', 'a wrong password stays on the login page');

  // Log in.
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', pass);
  await Promise.all([page.waitForURL((u) => u.pathname !== '/login'), page.click('button[type=submit]')]);
  check(new URL(page.url()).pathname === '/', 'logging in opens the overview');
  const cookies = await ctx.cookies();
  const session = cookies.find((c) => c.name === 'scanwatch_session');
  check(session && session.httpOnly && session.sameSite === 'Strict', 'the session cookie is HttpOnly and SameSite=Strict');
  await page.screenshot({ path: `${out}/overview.png`, fullPage: true });
  // The replay ends in the TCP/445 wave: it leads the overview's active warnings.
  const overview = await page.innerText('body');
  check(/TCP\/445/.test(overview), 'the overview shows the TCP/445 wave');
  check((await page.locator('svg').count()) > 0, 'the overview draws sparklines');

  // Open the seed warning from the warnings list.
  await page.goto(`${base}/alerts`);
  const link = page.locator(`a[href="/alerts/${seed.id}"]`).first();
  check((await link.count()) === 1, 'the warnings list links the seed warning');
  await Promise.all([page.waitForURL(`**/alerts/${seed.id}`), link.click()]);
  const narrative = await page.innerText('#narrative');
  check(narrative.includes(seed.headline.slice(0, 40)), 'the warning page shows the narrative');
  const chart = page.locator('svg.chart');
  check((await chart.count()) > 0, 'the warning page has an evidence chart');
  check((await page.locator('svg.chart path, svg.chart polyline').count()) > 0, 'the chart draws lines');
  for (const field of ['sources', 'events', 'sensors']) {
    const cell = page.locator(`#raw-numbers [data-field="${field}"]`).first();
    check((await cell.count()) === 1, `the raw numbers have ${field}`);
    check(digits(await cell.innerText()) === String(seed[field]), `${field} on the page equals the API's ${seed[field]}`);
  }
  const pageText = await page.innerText('body');
  check(pageText.includes('CVE-2007-1748'), 'the warning page names the candidate advisory');
  check((await page.locator('pre').count()) > 0, 'the warning page shows the rules to copy');
  // What the imported NVD, Exploit-DB and CSAF data say (docs/context.md), as the
  // API says it.
  const lead = seed.advisories[0];
  check(lead.id === 'CVE-2007-1748', `the seed warning's leading explanation is CVE-2007-1748 (${lead.id})`);
  const fieldText = async (f) => (await page.locator(`[data-field="${f}"]`).first().innerText()).trim();
  check((await fieldText('fix')).startsWith('Fix: no vendor fix when the surge came'), 'the page says no vendor fix existed at the surge');
  check((await fieldText('fix')).includes('MS07-029 (KB935966)'), 'the page names the fix that came later');
  check((await fieldText('patch-day')).includes('2007-05-08 (19 days after the surge began)'), 'the page gives the next Microsoft patch day');
  check((await fieldText('workaround')).includes('RpcProtocol'), "the page gives the vendor's workaround");
  check((await page.locator('#mitigations [data-field="mitigation-workaround"]').count()) === 3, "the vendor's three workarounds stand beside the firewall rules");
  check((await fieldText('exploits')).startsWith('3 public exploits by the surge (2 published later)'), 'the page counts the exploits by the surge');
  check((await fieldText('priority')) === 'urgent' && seed.priority === 'urgent', 'the page and the API say priority urgent');
  check((await fieldText('priority_reason')).includes('no vendor fix existed when the surge came'), 'the page says why it is urgent');
  check((await fieldText('followed-by')).includes('TCP/445'), 'the seed warning links the TCP/445 wave that follows it');
  await page.screenshot({ path: `${out}/warning.png`, fullPage: true });
  // The TCP/445 wave's first warning names the surge it follows, and its export too.
  const wave = alerts.find((a) => a.port === 445 && !a.update);
  check(wave !== undefined && wave.follows && wave.follows.port === 1025, 'the TCP/445 warning follows the TCP/1025 surge (API)');
  await page.goto(`${base}/alerts/${wave.id}`);
  check((await fieldText('follows')).includes('TCP/1025'), 'the TCP/445 warning page links the TCP/1025 incident');
  const stix = await page.evaluate(async (u) => (await fetch(u)).json(), `${base}/alerts/${seed.id}/export/stix`);
  const report = stix.objects.find((o) => o.type === 'report');
  check(report.description.includes('Followed by the TCP/445 surge'), "the seed's STIX export says the TCP/445 wave follows it");
  check(stix.objects.filter((o) => o.type === 'course-of-action' && o.name === 'Workaround for CVE-2007-1748').length === 3, "the STIX export carries the vendor's three workarounds");
  const misp = await page.evaluate(async (u) => (await fetch(u)).json(), `${base}/alerts/${seed.id}/export/misp`);
  check(misp.Event.Attribute.some((a) => a.comment === 'fix status of CVE-2007-1748: none_at_surge'), 'the MISP export carries the fix status');

  // The port and sensors pages render for the logged-in analyst.
  await page.goto(`${base}/ports/tcp/1025?range=30d`);
  check((await page.locator('svg.chart').count()) > 0, 'the port page has charts');
  await page.screenshot({ path: `${out}/port.png`, fullPage: true });
  await page.goto(`${base}/sensors`);
  check((await page.innerText('body')).includes('sensor-'), 'the sensors page lists the sensors');

  // Incidents: the seed warning's incident, acknowledged with the page's form.
  await page.goto(`${base}/incidents`);
  const rows = await page.locator('#incidents tbody tr').count();
  check(rows > 0 && rows < alerts.length, `the incidents page groups ${alerts.length} warnings into ${rows} incidents`);
  await page.screenshot({ path: `${out}/incidents.png`, fullPage: true });
  await page.goto(`${base}/incidents/${seed.id}`);
  check((await page.locator('#incident-warnings tbody tr').count()) > 0, 'the incident page lists its warnings');
  await page.selectOption('#state-form select[name=state]', 'acknowledged');
  await page.fill('#state-form input[name=note]', 'looking at it');
  await Promise.all([page.waitForLoadState(), page.click('#state-form button[type=submit]')]);
  check((await page.innerText('[data-field="state"]')) === 'acknowledged', 'the form acknowledges the incident');
  check((await page.innerText('#state-by')).includes('looking at it'), 'the note is kept');
  await page.screenshot({ path: `${out}/incident.png`, fullPage: true });

  // Every page at the two common screen sizes, screenshots in target/browser/; at
  // 1366 px no text may overflow its box and the page may not scroll sideways
  // (boxes that scroll on purpose, like the rules and the raw JSON, are left out).
  const tour = [
    ['overview', '/'],
    ['warnings', '/alerts'],
    ['warning', `/alerts/${seed.id}`],
    ['warning-log', `/alerts/${seed.id}?scale=log`],
    ['port', '/ports/tcp/1025?range=30d'],
    ['port-log', '/ports/tcp/1025?range=30d&scale=log'],
    ['sensors', '/sensors'],
    ['source', `/sources/${seed.top_sources[0].ip}`],
    ['incidents', '/incidents'],
    ['incident', `/incidents/${seed.id}`],
    ['search', '/search?q=1025'],
  ];
  for (const [w, h] of [[1366, 768], [1920, 1080]]) {
    await page.setViewportSize({ width: w, height: h });
    for (const [name, path] of tour) {
      const resp = await page.goto(base + path);
      check(resp.status() === 200, `${name} answers 200 at ${w}x${h}`);
      await page.screenshot({ path: `${out}/${name}-${w}x${h}.png`, fullPage: true });
      if (w !== 1366) continue;
      const over = await page.evaluate(() => {
        const bad = [];
        const doc = document.documentElement;
        if (doc.scrollWidth > window.innerWidth + 1) bad.push(`the page is ${doc.scrollWidth} px wide`);
        for (const el of document.querySelectorAll('body *')) {
          if (el.closest('svg')) continue;
          const cs = getComputedStyle(el);
          if (cs.display === 'inline' || cs.display === 'none') continue;
          if (['auto', 'scroll', 'hidden'].includes(cs.overflowX)) continue;
          if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) {
            const id = el.id ? `#${el.id}` : el.className ? `.${String(el.className).split(' ')[0]}` : '';
            bad.push(`${el.tagName.toLowerCase()}${id} (${el.scrollWidth} > ${el.clientWidth} px): ${el.innerText.slice(0, 60)}`);
          }
        }
        return bad;
      });
      check(over.length === 0, `${name} at 1366 px: no text overflows its box${over.length ? ': ' + over.slice(0, 4).join(' | ') : ''}`);
    }
  }
  await page.setViewportSize({ width: 1280, height: 900 });

  // Log out: the pages are closed again.
  await page.goto(`${base}/`);
  await Promise.all([page.waitForLoadState(), page.click('form[action="/logout"] button')]);
  await page.goto(`${base}/alerts/${seed.id}`);
  check(new URL(page.url()).pathname === '/login', 'after logging out the pages show the login page');
} catch (e) {
  failed = true;
  console.error(e.message);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
