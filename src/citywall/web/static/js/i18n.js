// Korean and English strings of the wall. Place names come from the city data in both languages.
const STRINGS = {
  ko: {
    events: "상황판", incidents_active: "진행 중인 사건", alarms: "경보", system_events: "시스템 이벤트",
    traffic_accidents: "교통사고", other_incidents: "기타", disasters_long: "침수·붕괴·가스누출",
    no_incidents: "진행 중인 사건 없음", no_alarms: "열린 경보 없음", count_unit: "건",
    sev_informational: "정보", sev_low: "낮음", sev_medium: "보통", sev_high: "높음", sev_critical: "심각",
    state_active_unacked: "발생 · 미확인", state_active_acked: "발생 · 확인", state_cleared_unacked: "해제 · 미확인", state_cleared_acked: "해제 · 확인",
    ack: "확인", assign: "배정", comment: "의견", assign_to: "담당자 이름", comment_text: "의견 내용", send: "보내기", cancel: "취소",
    assigned: "담당", escalated: "상급 보고", acked_by: "확인자", unacked: "미확인", situation: "상황", comments: "의견",
    incident: "사건 상세", close: "닫기", severity: "심각도", address: "위치", unit: "관할", opened: "발생", source: "출처",
    timeline: "처리 경과", step_now: "현재", step_skipped: "생략", nearby: "주변 시설", within_m: "반경 {m} m",
    fac_cctv: "CCTV", fac_hospital: "병원", fac_shelter: "대피소", fac_fire_station: "소방서",
    related_alarms: "관련 경보", advance_to: "다음 단계", note: "메모", note_hint: "메모 (단계를 건너뛰어 종결하면 필수)",
    refused: "거부됨", closed_case: "종결된 사건", loading_failed: "불러오지 못함",
    focus_new: "새 사건", focus_rule: "집중 기준: {sev} 이상", focus_return: "{s}초 후 원래 화면", dismiss: "해제 (Esc)", queued: "대기 {n}건",
    login: "로그인", logout: "로그아웃", user_name: "사용자 이름", password: "비밀번호", read_only: "읽기 전용",
    role_viewer: "조회", role_operator: "운영자", role_admin: "관리자", role_feed: "피드",
    session_expired: "로그인이 끝났습니다. 다시 로그인하십시오",
    replay: "다시보기", replay_banner: "다시보기", back_to_live: "실시간으로", replay_hint: "막대를 움직이면 그 시각의 도시를 다시 봅니다 (지난 24시간, 5분 단위)",
    replay_failed: "다시보기 실패", live_buffered: "실시간 변경은 돌아가면 반영됩니다",
    title: "디지털 시민시장실", city: "서울", at_a_glance: "한눈에 보는 서울", live_status: "실시간 도시현황",
    indicators: "시정현황", detail: "지역 상세", simulated: "시뮬레이션 데이터",
    simulated_long: "이 화면의 값은 시뮬레이터가 만든 모의 데이터입니다", example: "예시 데이터",
    example_long: "예시 지표입니다. 시의 지표 파일로 바꾸십시오 (citywall up --indicators)",
    connected: "실시간 연결", disconnected: "연결 끊김 · 재연결 중", stale: "데이터 지연",
    feed_down: "데이터 수신 중단: {feed} ({since}부터) — {error}",
    store_down: "저장소 장애: 관측값을 저장하지 못하고 있습니다 ({since}부터) — {error}",
    fires: "화재", rescues: "구조", ems: "구급", disasters: "재난",
    cai: "통합대기환경지수", weather: "날씨", freshness: "데이터 수신 상태", fresh: "정상", of: "/",
    domain_disaster: "재난안전", domain_traffic: "교통상황", domain_air: "대기환경", domain_water: "상수도",
    domain_projects: "주요사업", domain_commerce: "창업생태계", no_source: "연결된 데이터 없음",
    layer_cai: "통합대기지수", layer_pm10: "미세먼지 PM10", layer_pm25: "초미세먼지 PM2.5", layer_road_speed: "도로 속도",
    layer_congestion: "핫스팟 혼잡도", layer_sdot: "S-DoT 센서", layer_freshness: "수신 상태",
    back: "← 서울 전체", history: "추이", worst_air: "대기 나쁜 자치구", most_crowded: "붐비는 핫스팟", people: "명", h24: "24시간", d7: "7일", target: "목표", actual: "실적", trend: "추이",
    temperature: "기온", humidity: "습도", wind: "바람", precipitation: "강수",
    updated: "갱신", ago_s: "초 전", ago_m: "분 전", ago_h: "시간 전", none: "없음",
    things_here: "측정소·센서", dongs: "법정동", value: "값", city_avg: "서울 평균", deciding: "결정 오염물질",
    ev_connected: "실시간 연결됨", ev_disconnected: "실시간 연결 끊김", ev_new_things: "새 센서 등록",
    stale_sources: "지연", sensors: "센서", loading: "불러오는 중",
    grade_good: "좋음", grade_moderate: "보통", grade_unhealthy: "나쁨", grade_very_unhealthy: "매우나쁨",
    speed_free: "원활", speed_slow: "서행", speed_jam: "정체",
    crowd_1: "여유", crowd_2: "보통", crowd_3: "약간 붐빔", crowd_4: "붐빔",
    fresh_ok: "정상", fresh_stale: "지연", fresh_none: "수신 없음",
    kind_air_station: "대기측정소", kind_sdot: "S-DoT 센서", kind_road_link: "도로 구간", kind_hotspot: "핫스팟", kind_weather: "기상관측",
  },
  en: {
    events: "Situation board", incidents_active: "Active incidents", alarms: "Alarms", system_events: "System events",
    traffic_accidents: "Traffic accidents", other_incidents: "Other", disasters_long: "Flood, collapse, gas leak",
    no_incidents: "No active incidents", no_alarms: "No open alarms", count_unit: "",
    sev_informational: "Info", sev_low: "Low", sev_medium: "Medium", sev_high: "High", sev_critical: "Critical",
    state_active_unacked: "Active · unacknowledged", state_active_acked: "Active · acknowledged", state_cleared_unacked: "Cleared · unacknowledged", state_cleared_acked: "Cleared · acknowledged",
    ack: "Acknowledge", assign: "Assign", comment: "Comment", assign_to: "Assign to (user name)", comment_text: "Comment", send: "Send", cancel: "Cancel",
    assigned: "Assigned", escalated: "Escalated", acked_by: "Acknowledged by", unacked: "unacknowledged", situation: "Situation", comments: "Comments",
    incident: "Incident", close: "Close", severity: "Severity", address: "Where", unit: "Unit", opened: "Opened", source: "Source",
    timeline: "Timeline", step_now: "now", step_skipped: "skipped", nearby: "Nearby", within_m: "within {m} m",
    fac_cctv: "CCTV", fac_hospital: "Hospitals", fac_shelter: "Shelters", fac_fire_station: "Fire stations",
    related_alarms: "Related alarms", advance_to: "Next step", note: "Note", note_hint: "Note (needed when closing before the last steps)",
    refused: "Refused", closed_case: "Closed case", loading_failed: "Could not load",
    focus_new: "New incident", focus_rule: "focus at {sev} or above", focus_return: "back in {s} s", dismiss: "Dismiss (Esc)", queued: "{n} waiting",
    login: "Log in", logout: "Log out", user_name: "User name", password: "Password", read_only: "Read-only",
    role_viewer: "viewer", role_operator: "operator", role_admin: "admin", role_feed: "feed",
    session_expired: "Your session has ended: log in again",
    replay: "Replay", replay_banner: "REPLAY", back_to_live: "Back to live", replay_hint: "Move the slider to see the city as it was (last 24 hours, 5-minute steps)",
    replay_failed: "Replay failed", live_buffered: "Live changes are applied on return",
    title: "Digital Mayor's Office", city: "Seoul", at_a_glance: "Seoul at a glance", live_status: "Live city status",
    indicators: "City indicators", detail: "Area detail", simulated: "SIMULATED DATA",
    simulated_long: "Values on this screen are simulated by the built-in simulator", example: "EXAMPLE DATA",
    example_long: "Example indicators: replace them with the city's file (citywall up --indicators)",
    connected: "Live", disconnected: "Disconnected · reconnecting", stale: "Data delayed",
    feed_down: "Feed down: {feed} (since {since}) — {error}",
    store_down: "Store down: observations are not being stored (since {since}) — {error}",
    fires: "Fires", rescues: "Rescues", ems: "EMS calls", disasters: "Disasters",
    cai: "Air quality index (CAI)", weather: "Weather", freshness: "Feed freshness", fresh: "fresh", of: "/",
    domain_disaster: "Disaster & safety", domain_traffic: "Traffic", domain_air: "Air", domain_water: "Water",
    domain_projects: "Major projects", domain_commerce: "Commerce", no_source: "No source connected",
    layer_cai: "CAI", layer_pm10: "PM10", layer_pm25: "PM2.5", layer_road_speed: "Road speed",
    layer_congestion: "Hotspot crowding", layer_sdot: "S-DoT sensors", layer_freshness: "Data freshness",
    back: "← All of Seoul", history: "History", worst_air: "Worst air by district", most_crowded: "Most crowded hotspots", people: "people", h24: "24 h", d7: "7 days", target: "Target", actual: "Actual", trend: "Trend",
    temperature: "Temperature", humidity: "Humidity", wind: "Wind", precipitation: "Rain",
    updated: "updated", ago_s: "s ago", ago_m: "min ago", ago_h: "h ago", none: "none",
    things_here: "Stations and sensors", dongs: "Dongs", value: "Value", city_avg: "Seoul average", deciding: "deciding pollutant",
    ev_connected: "Live connection up", ev_disconnected: "Live connection lost", ev_new_things: "New sensors registered",
    stale_sources: "stale", sensors: "sensors", loading: "Loading",
    grade_good: "Good", grade_moderate: "Moderate", grade_unhealthy: "Unhealthy", grade_very_unhealthy: "Very unhealthy",
    speed_free: "Free flow", speed_slow: "Slow", speed_jam: "Congested",
    crowd_1: "Relaxed", crowd_2: "Normal", crowd_3: "Busy", crowd_4: "Crowded",
    fresh_ok: "Fresh", fresh_stale: "Stale", fresh_none: "Not reporting",
    kind_air_station: "Air stations", kind_sdot: "S-DoT sensors", kind_road_link: "Road links", kind_hotspot: "Hotspots", kind_weather: "Weather",
  },
};

let lang = "ko";
const listeners = [];

export function setLang(next) {
  lang = next === "en" ? "en" : "ko";
  document.documentElement.lang = lang;
  localStorage.setItem("citywall.lang", lang);
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const fn of listeners) fn(lang);
}

export const getLang = () => lang;
export const onLang = (fn) => listeners.push(fn);
export const t = (key) => STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
// A string with {name} placeholders filled in.
export const tf = (key, vars) => t(key).replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));
// A bilingual name object ({ko, en}) or a feature's name_ko/name_en, in the current language.
export const nameOf = (obj) => (obj ? obj[lang] ?? obj[`name_${lang}`] ?? obj.ko ?? obj.name_ko ?? "" : "");
