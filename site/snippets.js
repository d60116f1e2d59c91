// "Use it from code": the same request this page makes, for a terminal and for Python
// (standard library only), with this deployment's real endpoint. The content type is
// application/octet-stream, true of any image: the API reads the format from the bytes.

const shellQuote = (text) => `'${text.replaceAll("'", "'\\''")}'`;

/** @param {string} url the absolute /predict URL */
export function curlSnippet(url) {
  return [
    "curl -sS -H 'content-type: application/octet-stream' \\",
    "  --data-binary @photo.jpg \\",
    `  ${shellQuote(url)}`,
  ].join("\n");
}

/** @param {string} url the absolute /predict URL */
export function pythonSnippet(url) {
  return [
    "import json",
    "import urllib.request",
    "",
    'with open("photo.jpg", "rb") as image:',
    "    request = urllib.request.Request(",
    `        ${JSON.stringify(url)},`,
    "        data=image.read(),",
    '        headers={"content-type": "application/octet-stream"},',
    "    )",
    "with urllib.request.urlopen(request) as response:",
    "    result = json.load(response)",
    "",
    'for prediction in result["predictions"]:',
    '    print(f"{prediction[\'probability\']:.1%}  {prediction[\'label\']}")',
  ].join("\n");
}
