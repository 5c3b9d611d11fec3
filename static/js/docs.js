// The API reference: Redoc (loaded before this module) renders the server's own /openapi.json.
const BRAND = "#0b6e4f";

window.Redoc.init("/openapi.json", {
  expandResponses: "200,201",
  jsonSampleExpandLevel: 3,
  pathInMiddlePanel: true,
  sortPropsAlphabetically: false,
  theme: {
    colors: { primary: { main: BRAND } },
    sidebar: { activeTextColor: BRAND },
    logo: { maxHeight: "56px", maxWidth: "56px", gutter: "16px" },
  },
}, document.getElementById("redoc"));
